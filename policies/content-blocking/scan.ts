// The scan: one pass over each text. Token runs ([A-Za-z0-9_-]) are found with a lookup table; a
// run goes to a detector only when its first characters say it could be one (a key prefix, `eyJ`, a
// digit with no letter before it, two capitals), and only two substrings are searched with indexOf
// (`PRIVATE KEY`, `cret`) before their regexes. Nothing here allocates for ordinary text, and text
// without a digit, two adjacent capitals, `eyJ` or `cret` is not walked at all (mayHoldSensitive).

import { type ChatRequest, FORWARDED_TEXTS } from '../../core/spec/vocabulary.ts';
import { type DetectorId, isDigit, isUpper, TOKEN_CHAR } from './detectors.ts';
import { lettersIdAt } from './ids.ts';
import { lastNumberEnd, numberAt } from './numbers.ts';
import { partTexts } from './part-texts.ts';
import { hasAwsSecret, hasPrivateKey, isJwt, secretInToken } from './secrets.ts';

/** The shortest text any detector can match: a UK NINO or a Spanish DNI, 9 characters. */
const SHORTEST_MATCH = 9;

/** A digit or two adjacent capitals, in one native pass (two searches cost a quarter more on prose). */
const DIGIT_OR_TWO_CAPITALS = /[0-9]|[A-Z][A-Z]/;

/**
 * Whether `text` holds something every detector needs: a digit (numbers, ids, and every key the
 * scanner calls random-looking), two adjacent capitals (`AIza`, `AKIA`/`ASIA`, `PRIVATE KEY`, an
 * IBAN's or a NINO's country letters, an upper-case `SECRET`), `eyJ` (a JWT) or `cret` (a named AWS
 * secret; secrets.ts needs `cret` or `CRET` before its regex). Text without any of them cannot
 * match. These are native searches, about a third of the walk's time on a kilobyte of prose; text
 * with one of them gets the walk as before (test/policies/content-blocking-detectors.test.ts holds
 * the two equal on random texts).
 */
export function mayHoldSensitive(text: string): boolean {
  return DIGIT_OR_TWO_CAPITALS.test(text) || text.includes('eyJ') || text.includes('cret');
}

/** The first detector that matches somewhere in `text`, or undefined. */
export function scanText(text: string): DetectorId | undefined {
  if (text.length < SHORTEST_MATCH || !mayHoldSensitive(text)) return undefined;
  return walkText(text);
}

/** The walk over every token run, without the native pre-check (exported for the test that holds the two equal). */
export function walkText(text: string): DetectorId | undefined {
  const length = text.length;
  let resumeNumbers = 0;
  let index = 0;
  while (index < length) {
    const first = text.charCodeAt(index);
    if (first >= 128 || TOKEN_CHAR[first] === 0) {
      index++;
      continue;
    }
    const start = index;
    index++;
    while (index < length) {
      const code = text.charCodeAt(index);
      if (code >= 128 || TOKEN_CHAR[code] === 0) break;
      index++;
    }
    const runLength = index - start;
    if (isDigit(first)) {
      if (start >= resumeNumbers) {
        const found = numberAt(text, start);
        if (found !== undefined) return found;
        resumeNumbers = lastNumberEnd();
      }
      continue;
    }
    if (runLength >= 20) {
      const found = secretInToken(text, start, index);
      if (found !== undefined) return found;
    }
    if (first === 101 && text.charCodeAt(start + 1) === 121 && text.charCodeAt(start + 2) === 74 && isJwt(text, start, index)) return 'jwt';
    if (isUpper(first) && isUpper(text.charCodeAt(start + 1)) && (runLength === 2 || isDigit(text.charCodeAt(start + 2)))) {
      const found = lettersIdAt(text, start);
      if (found !== undefined) return found;
    }
  }
  if (hasPrivateKey(text)) return 'private_key';
  if (hasAwsSecret(text)) return 'aws_secret_key';
  return undefined;
}

export interface Finding {
  detector: DetectorId;
  /** The index in `request.messages`; -1 when the match is in an embeddings `input`. */
  messageIndex: number;
  /** Set when the match is in a tool call's arguments (or a custom tool call's input: `customInput`). */
  toolCallIndex?: number;
  customInput?: boolean;
  /** Set when the match is in the message's `name` (a participant's name, read by the model with its message). */
  messageName?: boolean;
  /** Set when the match is in an embeddings request's `input` (its index when `input` is an array). */
  inputIndex?: number;
  /** Set when the match is in a top-level field the provider reads as text (`prediction`). */
  field?: string;
  /** Set when the match is in a text the dialect forwards as the client wrote it (FORWARDED_TEXTS): where it is. */
  forwarded?: { where: string; param: string };
}

/** The texts a message carries beside its content: `refusal`, `reasoning_content`, `thinking_blocks[].thinking`. */
function messageTexts(message: Record<string, unknown>): string[] {
  const texts: string[] = [];
  if (typeof message.refusal === 'string') texts.push(message.refusal);
  if (typeof message.reasoning_content === 'string') texts.push(message.reasoning_content);
  const blocks = message.thinking_blocks;
  if (Array.isArray(blocks))
    for (const block of blocks) if (block !== null && typeof block === 'object') texts.push(...partTexts(block as Record<string, unknown>));
  return texts;
}

/** A predicted output (`prediction: {type: "content", content}`) is sent to the provider as text too. */
function scanPrediction(prediction: unknown): Finding | undefined {
  if (prediction === null || typeof prediction !== 'object') return undefined;
  const content = (prediction as { content?: unknown }).content;
  const texts =
    typeof content === 'string'
      ? [content]
      : Array.isArray(content)
        ? content.flatMap((part) => (part !== null && typeof part === 'object' ? partTexts(part as Record<string, unknown>) : []))
        : [];
  for (const text of texts) {
    const detector = scanText(text);
    if (detector !== undefined) return { detector, messageIndex: -1, field: 'prediction' };
  }
  return undefined;
}

/** An embeddings request's `input`: a string or an array of strings (token arrays carry no text). */
function scanInput(input: unknown): Finding | undefined {
  if (typeof input === 'string') {
    const detector = scanText(input);
    return detector === undefined ? undefined : { detector, messageIndex: -1, inputIndex: 0 };
  }
  if (!Array.isArray(input)) return undefined;
  for (let inputIndex = 0; inputIndex < input.length; inputIndex++) {
    const item: unknown = input[inputIndex];
    if (typeof item !== 'string') continue;
    const detector = scanText(item);
    if (detector !== undefined) return { detector, messageIndex: -1, inputIndex };
  }
  return undefined;
}

/** The texts the dialect sends as the client wrote them, outside `messages` (server tool blocks, a count_tokens body). */
function scanForwarded(request: ChatRequest): Finding | undefined {
  const forwarded = request[FORWARDED_TEXTS];
  if (forwarded === undefined) return undefined;
  for (const { text, where, param } of forwarded(request)) {
    const detector = scanText(text);
    if (detector !== undefined) return { detector, messageIndex: -1, forwarded: { where, param } };
  }
  return undefined;
}

/**
 * Every message's text (string content, text parts) and every tool call's arguments, in order; an
 * embeddings request's `input`; and what the dialect forwards beside them (FORWARDED_TEXTS).
 */
export function scanRequest(request: ChatRequest): Finding | undefined {
  if (request.input !== undefined) {
    const found = scanInput(request.input);
    if (found !== undefined) return found;
  }
  const found = scanMessages(request.messages);
  if (found !== undefined) return found;
  if (request.prediction !== undefined) {
    const predicted = scanPrediction(request.prediction);
    if (predicted !== undefined) return predicted;
  }
  return scanForwarded(request);
}

/** Every message's text (string content, text parts, reasoning sent back) and every tool call's arguments, in order. */
function scanMessages(messages: ChatRequest['messages']): Finding | undefined {
  if (!Array.isArray(messages)) return undefined;
  for (let messageIndex = 0; messageIndex < messages.length; messageIndex++) {
    const message = messages[messageIndex];
    if (message === undefined || message === null) continue;
    const content = message.content;
    if (typeof content === 'string') {
      const detector = scanText(content);
      if (detector !== undefined) return { detector, messageIndex };
    } else if (Array.isArray(content)) {
      for (const part of content) {
        if (part === null || typeof part !== 'object') continue;
        for (const text of partTexts(part as unknown as Record<string, unknown>)) {
          const detector = scanText(text);
          if (detector !== undefined) return { detector, messageIndex };
        }
      }
    }
    // An assistant turn's own words sent back: a refusal, reasoning text, Anthropic's thinking blocks
    // (replayed to Anthropic, dropped for anyone else by the translation).
    for (const text of messageTexts(message as unknown as Record<string, unknown>)) {
      const detector = scanText(text);
      if (detector !== undefined) return { detector, messageIndex };
    }
    // OpenAI reads a participant's name with its message: text the provider reads too (QA20).
    const name = (message as { name?: unknown }).name;
    if (typeof name === 'string') {
      const detector = scanText(name);
      if (detector !== undefined) return { detector, messageIndex, messageName: true };
    }
    const calls = message.tool_calls;
    if (!Array.isArray(calls)) continue;
    for (let toolCallIndex = 0; toolCallIndex < calls.length; toolCallIndex++) {
      const call = calls[toolCallIndex];
      const argumentsText = call?.function?.arguments;
      if (typeof argumentsText === 'string') {
        const detector = scanText(argumentsText);
        if (detector !== undefined) return { detector, messageIndex, toolCallIndex };
      }
      // OpenAI's custom tools send free text instead of JSON arguments, to the provider all the same.
      const input = (call as { custom?: { input?: unknown } } | undefined)?.custom?.input;
      if (typeof input === 'string') {
        const detector = scanText(input);
        if (detector !== undefined) return { detector, messageIndex, toolCallIndex, customInput: true };
      }
    }
  }
  return undefined;
}
