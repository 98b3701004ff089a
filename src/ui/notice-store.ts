// The one notice the user must see (an error, or what the app did on its own): shown next to the composer, fixed
// in the viewport, never scrolled away with the thread. A newer notice replaces the older one.
import { create } from 'zustand';

export interface Notice {
  text: string;
  tone: 'error' | 'info';
}

interface NoticeStore {
  notice: Notice | null;
  show(text: string, tone?: Notice['tone']): void;
  dismiss(): void;
}

export const useNoticeStore = create<NoticeStore>()((set) => ({
  notice: null,
  show: (text, tone = 'error') => set({ notice: { text, tone } }),
  dismiss: () => set({ notice: null }),
}));

export const showNotice = (text: string, tone?: Notice['tone']) => useNoticeStore.getState().show(text, tone);
