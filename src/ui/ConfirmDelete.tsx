// A delete that asks first, saying what goes and what it costs to get back (a conversation's messages and images,
// a model's gigabytes of download). Radix AlertDialog: focus stays in it, Escape and Cancel keep everything, and
// Cancel has the focus when it opens, so Enter never deletes by accident.
import * as AlertDialog from '@radix-ui/react-alert-dialog';
import type { ReactElement } from 'react';

export function ConfirmDelete({ trigger, title, detail, onConfirm }: { trigger: ReactElement; title: string; detail: string; onConfirm: () => void }) {
  return (
    <AlertDialog.Root>
      <AlertDialog.Trigger asChild>{trigger}</AlertDialog.Trigger>
      <AlertDialog.Portal>
        <AlertDialog.Overlay className="confirm-overlay" />
        <AlertDialog.Content className="confirm" data-testid="confirm-delete">
          <AlertDialog.Title className="confirm-title">{title}</AlertDialog.Title>
          <AlertDialog.Description className="muted">{detail}</AlertDialog.Description>
          <div className="confirm-actions">
            <AlertDialog.Cancel className="button">Cancel</AlertDialog.Cancel>
            <AlertDialog.Action className="button button-danger" onClick={onConfirm}>
              Delete
            </AlertDialog.Action>
          </div>
        </AlertDialog.Content>
      </AlertDialog.Portal>
    </AlertDialog.Root>
  );
}
