// What a Responses request sends to a provider's own Responses API (native.ts) that the chat
// translation does not carry, for the policies that read every text a provider reads
// (FORWARDED_TEXTS in core/spec/vocabulary.ts): hosted tools' call items (web_search_call,
// file_search_call, mcp_call, mcp_approval_request, code_interpreter_call, local_shell_call_output…),
// content parts the translation has no place for, and a reasoning item's `content` (its summary is
// sent empty). From the input and from the conversation continued, as the native body replays them.

import type { ForwardedText } from '../../core/spec/vocabulary.ts';
import { leafTexts, type LeafTextOptions } from '../../core/wire/forwarded-texts.ts';
import { replayable } from './native.ts';

type Json = Record<string, unknown>;

/** Items the translation reads (request.ts, inputItem): their text is scanned in the translated messages. */
const TRANSLATED_ITEMS: ReadonlySet<string> = new Set(['message', 'function_call', 'function_call_output', 'custom_tool_call', 'custom_tool_call_output']);
/** Content parts the translation reads (request.ts, contentPart). */
const TRANSLATED_PARTS: ReadonlySet<string> = new Set(['input_text', 'output_text', 'text', 'refusal', 'input_image', 'input_file']);

/** A generated image comes back as base64 in `result`: no text. */
const OPTIONS: LeafTextOptions = { opaque: (key, owner) => key === 'result' && owner.type === 'image_generation_call' };

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function push(value: unknown, where: string, param: string, texts: ForwardedText[]): void {
  for (const text of leafTexts(value, OPTIONS)) texts.push({ text, where, param });
}

/** What of one item the translation left out, as native.ts replays it. */
function itemTexts(item: Json, previous: readonly Json[], where: string, param: string, texts: ForwardedText[]): void {
  const type = typeof item.type === 'string' ? item.type : 'message';
  if (type === 'item_reference') {
    // References left after translation name reasoning of the conversation continued (request.ts, resolveReferences).
    const referenced = replayable(item, previous);
    if (referenced !== undefined) itemTexts(referenced, previous, where, param, texts);
    return;
  }
  if (type === 'reasoning') {
    // Replayed only with its encrypted content, and with its summary emptied (native.ts): its `content` is what travels.
    if (typeof item.encrypted_content === 'string' && item.encrypted_content !== '') push(item.content, `${where} (reasoning)`, param, texts);
    return;
  }
  if (!TRANSLATED_ITEMS.has(type)) {
    push(item, `${where} (${type})`, param, texts);
    return;
  }
  const parts = type === 'message' ? item.content : item.output;
  if (!Array.isArray(parts)) return;
  for (const part of parts as unknown[])
    if (isObject(part) && !TRANSLATED_PARTS.has(String(part.type))) push(part, `${where} (a '${String(part.type)}' part)`, param, texts);
}

/** `previous`: the conversation `previous_response_id` continues; `input`: this request's items, references resolved. */
export function forwardedItemTexts(previous: readonly Json[], input: readonly Json[]): ForwardedText[] {
  const texts: ForwardedText[] = [];
  previous.forEach((item, index) => {
    if (isObject(item)) itemTexts(item, previous, `item ${index} of the conversation continued`, 'previous_response_id', texts);
  });
  input.forEach((item, index) => {
    if (isObject(item)) itemTexts(item, previous, `input item ${index}`, `input[${index}]`, texts);
  });
  return texts;
}
