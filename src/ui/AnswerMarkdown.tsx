// Model output is untrusted: rendered as markdown with raw HTML skipped (react-markdown never creates elements
// from HTML in the text, and drops javascript: URLs), so `<img onerror>` or `<script>` stays inert text.
// Images in an answer are never loaded: `![x](https://host/?q=...)` would make the browser send whatever the
// model wrote into the URL (text read off an image, the question) to that host the moment the answer renders, and
// nothing the user shows the app may leave the machine. They show as their alt text; the URL stays visible on
// hover. Links open in a new tab without a referrer, and only when the user clicks them.
import type { ComponentProps } from 'react';
import Markdown from 'react-markdown';

function InertImage({ alt, src }: ComponentProps<'img'>) {
  const url = typeof src === 'string' && src ? src : undefined;
  return (
    <span className="answer-image" title={url ? `Image not loaded: ${url}` : undefined}>
      [image{alt ? `: ${alt}` : ''}]
    </span>
  );
}

function NewTabLink({ href, children }: ComponentProps<'a'>) {
  return (
    <a href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  );
}

const COMPONENTS = { img: InertImage, a: NewTabLink };

export function AnswerMarkdown({ text }: { text: string }) {
  return (
    <Markdown skipHtml components={COMPONENTS}>
      {text}
    </Markdown>
  );
}
