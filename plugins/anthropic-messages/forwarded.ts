// What a Messages request sends to Anthropic that its translation does not carry (FORWARDED_TEXTS in
// core/spec/vocabulary.ts), for the policies that read every text a provider reads. A request only
// Anthropic's own API serves (a server tool, citations) goes there as sent: the blocks the translation
// drops (server tool calls and results, MCP blocks, compaction…, and thinking when the translation
// targets another provider) and the citations on text blocks travel too. A count_tokens body goes
// to Anthropic as sent, whole.

import type { ForwardedText } from '../../core/spec/vocabulary.ts';
import { leafTexts } from '../../core/wire/forwarded-texts.ts';

type Json = Record<string, unknown>;

/** A block (or a field of one) that reaches Anthropic as the client wrote it, and where it is. */
export interface ForwardedBlock {
  value: unknown;
  /** Its path in the request: `messages[2].content[0]`. */
  param: string;
  /** What it is, for the refusal: the block's type, or `text citations`. */
  label: string;
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `messages[2].content[0].content[1]` as a person reads it: `message 2, content block 0, content block 1`. */
function placeOf(param: string): string {
  if (param.startsWith('system')) return 'the system prompt';
  return param.replace(/^messages\[(\d+)\]/, 'message $1').replace(/\.content\[(\d+)\]/g, ', content block $1');
}

/** The block itself, when it is one the translation leaves out; its `citations` when it is a text block citing sources. */
export function forwardedBlock(block: Json, param: string): ForwardedBlock {
  return { value: block, param, label: String(block.type) };
}

export function forwardedCitations(block: Json, param: string): ForwardedBlock | undefined {
  return Array.isArray(block.citations) && block.citations.length > 0 ? { value: block.citations, param, label: 'text citations' } : undefined;
}

export function forwardedTexts(blocks: readonly ForwardedBlock[]): ForwardedText[] {
  const texts: ForwardedText[] = [];
  for (const block of blocks) {
    const where = `${placeOf(block.param)} (${block.label})`;
    for (const text of leafTexts(block.value)) texts.push({ text, where, param: block.param });
  }
  return texts;
}

/** Every text of a body Anthropic reads as sent (count_tokens): the system prompt and every turn's blocks. */
export function bodyTexts(body: Json): ForwardedText[] {
  const texts: ForwardedText[] = [];
  for (const text of leafTexts(body.system)) texts.push({ text, where: 'the system prompt', param: 'system' });
  const turns = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  turns.forEach((turn, index) => {
    const content = isRecord(turn) ? turn.content : undefined;
    if (typeof content === 'string') texts.push({ text: content, where: `message ${index}`, param: `messages[${index}].content` });
    else if (Array.isArray(content))
      content.forEach((block, position) => {
        if (isRecord(block)) texts.push(...forwardedTexts([forwardedBlock(block, `messages[${index}].content[${position}]`)]));
      });
  });
  return texts;
}
