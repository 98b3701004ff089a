// Model output is untrusted: rendered as markdown with raw HTML skipped (react-markdown never creates elements
// from HTML in the text, and drops javascript: URLs), so `<img onerror>` or `<script>` stays inert text.
import Markdown from 'react-markdown';

export function AnswerMarkdown({ text }: { text: string }) {
  return <Markdown skipHtml>{text}</Markdown>;
}
