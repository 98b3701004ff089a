// Test-only access to the installed @mlc-ai/web-llm's bundled source (lib/index.js), so tests can check our
// assumptions about its internals against the real text (a package upgrade that changes them fails a test).
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { createRequire } from 'node:module';

export function webLlmLibPath(): string {
  return createRequire(import.meta.url).resolve('@mlc-ai/web-llm');
}

let cached: string | null = null;

/** lib/index.js of the installed package. */
export function webLlmLibSource(): string {
  cached ??= readFileSync(webLlmLibPath(), 'utf8');
  return cached;
}

/** The installed package's version. */
export function webLlmVersion(): string {
  const pkg = webLlmLibPath().replace(/lib[\\/]index\.js$/, 'package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** The text from `start` to its matching closing brace (the first "{" at or after `start`). Ignores braces in strings (good enough for this file's plain functions). */
function balanced(src: string, start: number): string {
  const open = src.indexOf('{', start);
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    if (src[i] === '{') depth++;
    else if (src[i] === '}' && --depth === 0) return src.slice(start, i + 1);
  }
  throw new Error('unbalanced braces');
}

/** The source of the top-level `function name(...) {...}` (throws when the package no longer has it). */
export function libFunctionSource(name: string): string {
  const src = webLlmLibSource();
  const at = src.indexOf(`\nfunction ${name}(`);
  if (at < 0) throw new Error(`@mlc-ai/web-llm lib/index.js has no top-level function ${name}`);
  return balanced(src, at + 1);
}

/** The source of the top-level `class name {...}`. */
export function libClassSource(name: string): string {
  const src = webLlmLibSource();
  const at = src.indexOf(`\nclass ${name} {`);
  if (at < 0) throw new Error(`@mlc-ai/web-llm lib/index.js has no top-level class ${name}`);
  return balanced(src, at + 1);
}

/** Method names of a top-level class (its 4-space indented `name(...) {` lines). */
export function libClassMethods(name: string): Set<string> {
  const names = new Set<string>();
  for (const m of libClassSource(name).matchAll(/^ {4}(?:static |async )*([A-Za-z_$][\w$]*)\([^)]*\) \{$/gm)) names.add(m[1]!);
  return names;
}

/** The source of method `method` of top-level class `cls`. */
export function libMethodSource(cls: string, method: string): string {
  const body = libClassSource(cls);
  const m = new RegExp(`^ {4}(?:static |async )*${method}\\([^)]*\\) \\{$`, 'm').exec(body);
  if (!m) throw new Error(`@mlc-ai/web-llm class ${cls} has no method ${method}`);
  return balanced(body, m.index);
}

/** 1-based line of the first occurrence of `needle` in lib/index.js (-1 when absent). */
export function libLineOf(needle: string): number {
  const src = webLlmLibSource();
  const at = src.indexOf(needle);
  return at < 0 ? -1 : src.slice(0, at).split('\n').length;
}

/** Asserts that every statement of `order` occurs in `src`, in this order. */
export function expectInOrder(src: string, order: readonly string[]): void {
  let at = 0;
  for (const s of order) {
    const i = src.indexOf(s, at);
    expect(i, s).toBeGreaterThanOrEqual(0);
    at = i + s.length;
  }
}
