// Token counts for when the provider sent none: a stream the client (or the shutdown drain) cut
// before the upstream's usage arrived, or an answer whose provider reported no usable usage at all
// (usage-limits.ts). The provider still read the prompt and generated what was answered, so the
// request is billed at the list price of an estimate, flagged `usageEstimated`.
//
// The estimate is built to be at least a real tokenizer's count for typical text, never below it:
// an estimated bill may be a little high, never $0 or a fraction of the real one. It is calibrated
// against OpenAI's cl100k_base and o200k_base (test/accounting/token-estimate.test.ts holds the
// samples and their real counts: English and other European languages, Cyrillic, Greek, Hebrew,
// Arabic, Hindi, Thai, Chinese, Japanese, Korean, emoji, code, JSON, SQL, HTML, YAML, CSV, numbers,
// dates, URLs, hex ids, whitespace). English prose comes out about 1.6 times its real count, CJK about
// 1.3 times. Random text (base64, hex ids, random letters, whitespace runs, rare CJK characters)
// tokenizes denser than these rules and can come in at about half the real count, so the estimate
// serves figures that may be approximate (a cut stream's bill, token rate limits); money that must never
// be under-reserved (budgets, approval thresholds) reads the strict bound in prompt-bound.ts.
//
// The rules follow how byte-level BPE tokenizers pre-split text:
// - a run of ASCII letters: ceil(length / 3) tokens (most English words are one token; this leaves
//   room for rarer words and languages whose words split into more pieces);
// - a run of digits: ceil(length / 3) (tokenizers split numbers into groups of up to three digits);
// - a run of whitespace: ceil(length / 4), where a single space before a letter or a punctuation mark
//   is free (it joins that token);
// - any other ASCII character (punctuation, symbols): 1;
// - Cyrillic (U+0400-U+052F): 0.75 per character; other two-byte UTF-8 characters (Latin with
//   diacritics, Greek, Hebrew, Arabic…): 1.5; other characters of the Basic Multilingual Plane (CJK,
//   kana, Hangul, Indic scripts, Thai…): 1.25; each UTF-16 surrogate (emoji, rare CJK): 1.5, so 3 per
//   character outside the BMP.
// A chat prompt adds 5 tokens per message (role and separators), 5 to prime the reply, 500 when
// tools are declared (Anthropic's tool-use system prompt is about 350) plus the estimate of the tools'
// JSON, and 1,600 per image (OpenAI's high-detail maximum is 1,445 and Anthropic's about 1,600; a model
// that counts image tokens differently, as gpt-4o-mini does, is under-estimated there).

import type { ChatMessage, ChatRequest, ChatResult, Usage } from '../spec/vocabulary.ts';

export const MESSAGE_OVERHEAD_TOKENS = 5;
export const REPLY_PRIMING_TOKENS = 5;
export const TOOLS_OVERHEAD_TOKENS = 500;
export const IMAGE_TOKENS = 1600;

/** Kinds of UTF-16 code unit at or above this are runs (letters, digits, whitespace); below, a unit's own weight in quarters. */
const LETTERS = 16;
const DIGITS = 17;
const WHITESPACE = 18;

/**
 * Every UTF-16 code unit's kind (64 KB, built once): one table read per character instead of a chain
 * of range comparisons, the same rules as the header's.
 */
const KIND_OF_UNIT = buildKinds();

function buildKinds(): Uint8Array {
  const kinds = new Uint8Array(65536);
  for (let code = 0; code < kinds.length; code++) {
    if ((code >= 65 && code <= 90) || (code >= 97 && code <= 122)) kinds[code] = LETTERS;
    else if (code >= 48 && code <= 57) kinds[code] = DIGITS;
    else if (code === 32 || code === 10 || code === 9 || code === 13) kinds[code] = WHITESPACE;
    else if (code < 0x80) kinds[code] = 4;
    else if (code >= 0x400 && code < 0x530) kinds[code] = 3;
    else if (code < 0x800) kinds[code] = 6;
    else if (code >= 0xd800 && code <= 0xdfff) kinds[code] = 6;
    else kinds[code] = 5;
  }
  return kinds;
}

/**
 * Tokens of a text in quarter tokens (integers are cheaper than fractions, and this runs on every
 * streamed delta and every budgeted prompt); callers sum several texts before rounding up once.
 */
function weighQuarters(text: string): number {
  let quarters = 0;
  const length = text.length;
  let index = 0;
  while (index < length) {
    const kind = KIND_OF_UNIT[text.charCodeAt(index)] as number;
    if (kind < LETTERS) {
      quarters += kind;
      index++;
      continue;
    }
    // A run of one kind: letters and digits ceil(run / 3) tokens, whitespace ceil(run / 4).
    let end = index + 1;
    while (end < length && KIND_OF_UNIT[text.charCodeAt(end)] === kind) end++;
    if (kind === WHITESPACE) {
      let run = end - index;
      // ` word` and ` (` are one token; a space before a digit is a token of its own.
      if (end < length && text.charCodeAt(end - 1) === 32 && KIND_OF_UNIT[text.charCodeAt(end)] !== DIGITS) run--;
      quarters += (((run + 3) / 4) | 0) * 4;
    } else {
      quarters += (((end - index + 2) / 3) | 0) * 4;
      // Prose is mostly a word, one space, a word: that space is free (it joins the next word), so it
      // is stepped over here rather than weighed as a run of its own (a quarter less time on prose).
      if (kind === LETTERS && end + 1 < length && text.charCodeAt(end) === 32 && KIND_OF_UNIT[text.charCodeAt(end + 1)] === LETTERS) end++;
    }
    index = end;
  }
  return quarters;
}

const tokensOf = (quarters: number): number => Math.ceil(quarters / 4);

/** An upper estimate of a text's token count (see the header for the rules and their calibration). */
export function estimateTextTokens(text: string): number {
  return tokensOf(weighQuarters(text));
}

/**
 * A message's content weighed part by part: text by `weigh`, an image at `imageWeight`, any other part
 * (a document, audio) by `weighOther` (`weigh` unless given) of its JSON. Shared by the estimate (quarter tokens) and the prompt
 * bound (UTF-8 bytes, prompt-bound.ts), so both read the same parts the same way.
 */
export function weighContent(
  content: ChatMessage['content'],
  weigh: (text: string) => number,
  imageWeight: number,
  weighOther: (text: string) => number = weigh,
): number {
  if (content === undefined || content === null) return 0;
  if (typeof content === 'string') return weigh(content);
  let total = 0;
  for (const part of content) {
    if (part === null || typeof part !== 'object') continue;
    if (typeof part.text === 'string') total += weigh(part.text);
    else if (part.type === 'image_url' || part.type === 'image' || part.type === 'input_image') total += imageWeight;
    else total += weighOther(JSON.stringify(part));
  }
  return total;
}

/**
 * An embeddings request's `input` (a string, strings, or token arrays) in quarter tokens: strings by
 * the text rules, token ids one token each. Without it a token rate limit saw an embeddings call as
 * about nothing before the call, and one call of thousands of inputs passed a 100-token limit (QA12).
 */
function inputQuarters(input: unknown): number {
  if (typeof input === 'string') return weighQuarters(input);
  if (!Array.isArray(input)) return 0;
  let quarters = 0;
  for (const item of input) {
    if (typeof item === 'string') quarters += weighQuarters(item);
    else if (typeof item === 'number') quarters += 4;
    else if (Array.isArray(item)) quarters += item.length * 4;
  }
  return quarters;
}

/** An upper estimate of the prompt tokens a request costs: messages, tools, response schema, and an embeddings request's `input`. */
export function estimatePromptTokens(request: ChatRequest): number {
  let quarters = REPLY_PRIMING_TOKENS * 4 + inputQuarters(request.input);
  const messages = Array.isArray(request.messages) ? request.messages : [];
  for (const message of messages) {
    if (message === null || typeof message !== 'object') continue;
    quarters += MESSAGE_OVERHEAD_TOKENS * 4 + weighContent(message.content, weighQuarters, IMAGE_TOKENS * 4);
    if (typeof message.name === 'string') quarters += 4 + weighQuarters(message.name);
    if (message.tool_calls !== undefined) quarters += weighQuarters(JSON.stringify(message.tool_calls));
    if (typeof message.refusal === 'string') quarters += weighQuarters(message.refusal);
  }
  if (Array.isArray(request.tools) && request.tools.length > 0) quarters += TOOLS_OVERHEAD_TOKENS * 4 + weighQuarters(JSON.stringify(request.tools));
  if (request.response_format !== undefined && request.response_format.type === 'json_schema') {
    quarters += weighQuarters(JSON.stringify(request.response_format.json_schema));
  }
  return tokensOf(quarters);
}

/**
 * An upper estimate of what a whole answer generated: each choice's text, reasoning, refusal and tool
 * calls, weighed as a stream's deltas are (StreamObserver): what a served answer whose provider
 * reported no usable output count is booked for. Reasoning the provider did not show is not in it.
 */
export function estimateAnswerTokens(result: ChatResult): number {
  let quarters = 0;
  for (const choice of result.choices) {
    const message = choice.message;
    if (message === null || typeof message !== 'object') continue;
    quarters += weighContent(message.content, weighQuarters, IMAGE_TOKENS * 4);
    if (typeof message.reasoning_content === 'string') quarters += weighQuarters(message.reasoning_content);
    if (typeof message.refusal === 'string') quarters += weighQuarters(message.refusal);
    for (const call of message.tool_calls ?? []) {
      if (typeof call.function?.name === 'string') quarters += weighQuarters(call.function.name);
      if (typeof call.function?.arguments === 'string') quarters += weighQuarters(call.function.arguments);
    }
  }
  return tokensOf(quarters);
}

/**
 * The usage a cut stream is billed for: the estimate of what was streamed, and the prompt's usage as
 * the provider reported it before any output (Anthropic's message_start, Gemini's first chunk) when
 * it did, else the prompt's estimate (at most `countedPromptTokens`, the tokenizer's count a budget
 * reserved on, when there is one). A reported count, cache reads and writes included, is the
 * provider's bill; an estimate of the same prompt is not (it over-counts about twice). A prompt usage
 * whose input count was not reported usably is no report of the prompt.
 */
export function estimatedUsage(request: ChatRequest, streamedTokens: number, promptUsage?: Usage, countedPromptTokens?: number): Usage {
  const outputTokens = Math.ceil(streamedTokens);
  if (promptUsage !== undefined && promptUsage.unreported?.inputTokens === undefined) {
    const { unreported: _output, ...reported } = promptUsage;
    return { ...reported, outputTokens, reasoningTokens: 0, totalTokens: promptUsage.inputTokens + outputTokens };
  }
  // A prompt a budget counted with the provider's tokenizer (Accountant.countedPrompt) was reserved at
  // that count, which is what the provider bills: the estimate (built to stay above tokenizers, about
  // 1.6 times English prose) would book more than the reservation held and pass the cap.
  const estimate = estimatePromptTokens(request);
  const inputTokens = countedPromptTokens === undefined ? estimate : Math.min(estimate, countedPromptTokens);
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 };
}
