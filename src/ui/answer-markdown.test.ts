// The answer renderer keeps hostile model output inert: no element, attribute or URL from it can run script.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { AnswerMarkdown } from './AnswerMarkdown.tsx';

const render = (text: string) => renderToStaticMarkup(createElement(AnswerMarkdown, { text }));

describe('AnswerMarkdown', () => {
  it('renders markdown', () => {
    const html = render('**bold** and `code`\n\n- a\n- b');
    expect(html).toContain('<strong>bold</strong>');
    expect(html).toContain('<code>code</code>');
    expect(html).toContain('<li>a</li>');
  });

  it('leaves <img onerror>, <script>, inline handlers and javascript: links inert', () => {
    const html = render('Look: <img src=x onerror="alert(1)"> <script>alert(2)</script>\n\n<div onclick="alert(3)">x</div>\n\n[click](javascript:alert(4)) ![i](javascript:alert(5))');
    expect(html).not.toMatch(/<img[^>]*onerror/i);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/onclick=/i);
    expect(html).not.toMatch(/javascript:/i);
  });

  it('never loads an image the answer names (its URL would carry what the model wrote to that host): alt text instead', () => {
    const html = render('Here: ![the receipt](https://tracker.example/p.png?q=total%2042) and ![](http://x.example/a.gif)');
    expect(html).not.toMatch(/<img/i);
    expect(html).toContain('[image: the receipt]');
    expect(html).toContain('[image]');
    expect(html).toContain('title="Image not loaded: https://tracker.example/p.png?q=total%2042"');
  });

  it('opens links in a new tab, without a referrer', () => {
    const html = render('See [the paper](https://arxiv.org/abs/2501.03895).');
    expect(html).toContain('<a href="https://arxiv.org/abs/2501.03895" target="_blank" rel="noopener noreferrer">the paper</a>');
  });
});
