// A prompt's tokens counted from above, for money that must never be under-reserved: budget
// reservations and approval thresholds (policies/cost-cap/worst-case.ts). The estimate beside it
// (token-estimate.ts) is calibrated to sit above real tokenizers for ordinary prose, but random text
// (base64, hex ids, rare CJK characters, whitespace runs) tokenizes denser than its rules and came in
// at half the real count; a budget reserved with it could be overshot by such a prompt.
//
// The bound rests on one fact instead of calibration: the five providers' tokenizers are byte-level
// (BPE over UTF-8 bytes, or SentencePiece with byte fallback), so every token is at least one byte
// and no text is more tokens than its UTF-8 length. Each message adds the estimate's overheads (role
// and separators, the reply's priming, the tool-use preamble), which are already above what OpenAI
// and Anthropic add, and every other text or structure the request carries counts its JSON bytes
// (Cohere's `documents` are prompt; an unlisted parameter is a few tokens too many).
// test/accounting/prompt-bound.test.ts checks the bound against cl100k_base and o200k_base on every
// kind of text, random and ordinary.
//
// What it does not bound: an image part counts IMAGE_TOKENS (above Claude's and GPT-4o's
// high-detail maximum, below gpt-4o-mini's multiplied image tokens and a very large image tiled by
// Gemini), and a document or audio part counts the bytes of its encoded form. The price of the bound
// is looseness: English prose is about a quarter as many tokens as bytes, so a prompt's share of a
// reservation is about four times its real cost until the call settles. Where that changes an answer
// (a reservation that does not fit, an approval threshold), the same rule runs again with a provider's
// own tokenizer weighing the message texts (PricingService.countPromptTokens).

import type { ChatRequest } from '../spec/vocabulary.ts';
import { IMAGE_TOKENS, MESSAGE_OVERHEAD_TOKENS, REPLY_PRIMING_TOKENS, TOOLS_OVERHEAD_TOKENS, weighContent } from './token-estimate.ts';

/** UTF-8 bytes: at least the tokens of the text under any byte-level tokenizer. */
const bytesOf = (text: string): number => Buffer.byteLength(text, 'utf8');

/**
 * At least the prompt tokens any of the providers can bill for `request` (images and documents aside:
 * see the header). `weighText` counts the messages' texts: their UTF-8 bytes by default, or a
 * provider's own tokenizer for its model (never more than the bytes, and exact for that model), which
 * gives a tighter bound for that provider alone (PricingService.countPromptTokens).
 */
export function promptTokenBound(request: ChatRequest, weighText: (text: string) => number = bytesOf): number {
  let tokens = REPLY_PRIMING_TOKENS;
  const messages = Array.isArray(request.messages) ? request.messages : [];
  for (const message of messages) {
    if (message === null || typeof message !== 'object') continue;
    // A document or audio part keeps its bytes: a tokenizer's count of its encoded form is not what it bills.
    tokens += MESSAGE_OVERHEAD_TOKENS + weighContent(message.content, weighText, IMAGE_TOKENS, bytesOf);
    if (typeof message.name === 'string') tokens += 1 + bytesOf(message.name);
    if (typeof message.tool_call_id === 'string') tokens += bytesOf(message.tool_call_id);
    if (message.tool_calls !== undefined) tokens += bytesOf(JSON.stringify(message.tool_calls));
    if (typeof message.refusal === 'string') tokens += weighText(message.refusal);
  }
  if (Array.isArray(request.tools) && request.tools.length > 0) tokens += TOOLS_OVERHEAD_TOKENS + bytesOf(JSON.stringify(request.tools));
  if (request.response_format !== undefined && request.response_format.type === 'json_schema') {
    tokens += bytesOf(JSON.stringify(request.response_format.json_schema));
  }
  return tokens + otherFieldsBound(request);
}

/** Fields counted above, and the parameters of the OpenAI shape that no provider bills as prompt. */
const NOT_OTHERWISE_PROMPT = new Set([
  'messages',
  'tools',
  'response_format',
  'model',
  'provider',
  'routing',
  'user',
  'metadata',
  'stream_options',
  'tool_choice',
  'stop',
  'logit_bias',
  'service_tier',
  'reasoning_effort',
  'prompt_cache_key',
  'safety_identifier',
  'modalities',
  'verbosity',
]);

/**
 * Any other text or structure a request carries may reach the provider's prompt (Cohere's `documents`,
 * Anthropic's `mcp_servers` definitions, a field a provider adds later): each counts its JSON bytes.
 * A parameter not named above is counted too, a few tokens too many; numbers and flags never are.
 */
function otherFieldsBound(request: ChatRequest): number {
  let tokens = 0;
  for (const field in request) {
    if (NOT_OTHERWISE_PROMPT.has(field)) continue;
    const value = request[field];
    if (typeof value === 'string') tokens += bytesOf(value);
    else if (value !== null && typeof value === 'object') tokens += bytesOf(JSON.stringify(value));
  }
  return tokens;
}
