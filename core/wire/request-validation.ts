import { invalidField, KeywayError } from '../errors.ts';
import type { ChatRequest } from '../spec/vocabulary.ts';
import { checkMessageShape, checkResponseFormat, checkStop, checkToolChoice, checkTools } from './chat-shapes.ts';

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

/** C0 controls, DEL, C1 controls and the Unicode line and paragraph separators. */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * Model names are echoed into logs, usage rows and response headers: one with a control character
 * (a newline, NUL, ESC) is refused rather than carried, whichever dialect it came in.
 */
export function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTER.test(text);
}

/**
 * The longest model name taken, on every inbound API: providers' names are far shorter, and a name is
 * echoed in errors, logs and usage rows (a 180 KB one answered in full held a worker for seconds).
 */
export const MAX_MODEL_NAME_LENGTH = 256;

/** The checks a model name gets whichever dialect it came in (after its own check that it is a string). */
export function checkModelName(model: string): void {
  if (model.length > MAX_MODEL_NAME_LENGTH) throw invalidField('model', `is ${model.length} characters long; the limit is ${MAX_MODEL_NAME_LENGTH}`);
  if (hasControlCharacter(model)) throw invalidField('model', 'must not contain control characters');
}

/**
 * JSON.parse reads `1e400` as Infinity, and a stored Infinity comes back as null: every hand-written
 * number check goes through this, as TypeBox's own number check does, so no body can store a value
 * its own API would refuse on the next write.
 */
export function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

export interface SamplingRange {
  minimum: number;
  maximum: number;
}

/** The sampling parameters a dialect bounds, with the bounds of the API it speaks. */
export type SamplingRanges = Readonly<Record<'temperature' | 'top_p', SamplingRange>>;

/**
 * OpenAI's ranges, which its API enforces (400 on `temperature: 3`): Keyway's OpenAI dialects hold
 * every request to them before routing, so the same request is not refused by one provider, clamped by
 * another and passed on as it is by a third, depending on who serves. A provider with a narrower range
 * still clamps inside these, with a warning.
 */
export const OPENAI_SAMPLING_RANGES: SamplingRanges = { temperature: { minimum: 0, maximum: 2 }, top_p: { minimum: 0, maximum: 1 } };

/** Each sampling parameter the body sets (null is unset) must be a number within the dialect's range. */
export function checkSamplingRanges(body: Readonly<Record<string, unknown>>, ranges: SamplingRanges): void {
  for (const name of ['temperature', 'top_p'] as const) {
    const value = body[name];
    if (value === undefined || value === null) continue;
    const { minimum, maximum } = ranges[name];
    if (!isFiniteNumber(value) || value < minimum || value > maximum) throw invalidField(name, `must be a number from ${minimum} to ${maximum}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The checks every chat request gets before routing: the shape Keyway itself relies on, the fields of
 * messages, tools and tool calls that the provider translations read included (chat-shapes.ts).
 * Providers check the rest the way their APIs do. Hand-written because it runs on every request.
 */
export function validateChatRequest(body: unknown): ChatRequest {
  if (!isObject(body)) throw new KeywayError('invalid_request', { detail: 'The request body must be a JSON object.' });
  if (body.model !== undefined && (typeof body.model !== 'string' || body.model.length === 0)) throw invalidField('model', 'expected a non-empty string');
  if (typeof body.model === 'string') checkModelName(body.model);
  const messages = body.messages;
  if (messages === undefined) throw new KeywayError('missing_field', { param: 'messages' }, { param: 'messages' });
  if (!Array.isArray(messages) || messages.length === 0) throw invalidField('messages', 'expected a non-empty array of messages');
  for (let index = 0; index < messages.length; index++) {
    const message: unknown = messages[index];
    if (!isObject(message)) throw invalidField(`messages[${index}]`, 'expected an object');
    if (typeof message.role !== 'string' || !ROLES.has(message.role)) {
      throw invalidField(`messages[${index}].role`, `expected one of ${[...ROLES].join(', ')}`);
    }
    const content = message.content;
    if (content !== undefined && content !== null && typeof content !== 'string' && !Array.isArray(content)) {
      throw invalidField(`messages[${index}].content`, 'expected a string, an array of content parts, or null');
    }
    checkMessageShape(message, index);
  }
  if (body.stream !== undefined && typeof body.stream !== 'boolean') throw invalidField('stream', 'expected a boolean');
  if (body.provider !== undefined && typeof body.provider !== 'string') throw invalidField('provider', 'expected a provider name');
  // null is no routing, as on every other inbound API.
  if (body.routing !== undefined && body.routing !== null) validateRouting(body.routing);
  for (const name of ['max_tokens', 'max_completion_tokens', 'n'] as const) {
    const value = body[name];
    if (value !== undefined && value !== null && !isFiniteNumber(value)) throw invalidField(name, 'expected a number');
  }
  checkSamplingRanges(body, OPENAI_SAMPLING_RANGES);
  // null asks for no tools, as null does for every other optional field (LangChain- and LiteLLM-built
  // bodies send `tools: null`); it was the one null refused (QA18). Left out, no translation meets it.
  if (body.tools === null) delete body.tools;
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) throw invalidField('tools', 'expected an array');
    checkTools(body.tools);
  }
  checkToolChoice(body.tool_choice);
  checkStop(body.stop);
  checkResponseFormat(body.response_format);
  if (body.stream_options !== undefined && body.stream_options !== null && !isObject(body.stream_options))
    throw invalidField('stream_options', 'expected an object');
  return body as unknown as ChatRequest;
}

/** The members a `routing` object may have (docs/routing.md); any other is refused, naming it. */
export const ROUTING_FIELDS: readonly string[] = [
  'strategy',
  'use_byok_only',
  'fallback_to_parrotrouter',
  'provider_order',
  'fallback_reasons',
  'cost_weights',
  'prefer_byok',
  'timeout_ms',
  'connect_timeout_ms',
  'total_timeout_ms',
  'retries',
  'max_attempts',
];

export function validateRouting(routing: unknown): void {
  if (!isObject(routing)) throw invalidField('routing', 'expected an object');
  // A misspelt member (`fallback_reason`, `cost_weight`) would be carried and never read: a routing not applied.
  for (const name in routing) {
    if (!ROUTING_FIELDS.includes(name)) throw invalidField(`routing.${name}`, `unknown field; known fields: ${ROUTING_FIELDS.join(', ')}`);
  }
  if (routing.strategy !== undefined && typeof routing.strategy !== 'string') throw invalidField('routing.strategy', 'expected a strategy name');
  for (const name of ['use_byok_only', 'fallback_to_parrotrouter', 'prefer_byok'] as const) {
    if (routing[name] !== undefined && typeof routing[name] !== 'boolean') throw invalidField(`routing.${name}`, 'expected a boolean');
  }
  // Each alone is an explicit choice; together they ask for platform keys and forbid them in one breath.
  if (routing.use_byok_only === true && routing.fallback_to_parrotrouter === true)
    throw invalidField(
      'routing.fallback_to_parrotrouter',
      "contradicts routing.use_byok_only: true (never the platform's keys); send one of them: use_byok_only to stay on this account's keys, fallback_to_parrotrouter to allow the platform's after them",
    );
  for (const name of ['provider_order', 'fallback_reasons'] as const) {
    const list = routing[name];
    if (list !== undefined && (!Array.isArray(list) || list.some((item) => typeof item !== 'string')))
      throw invalidField(`routing.${name}`, 'expected an array of strings');
  }
  const reasons = routing.fallback_reasons as string[] | undefined;
  const known = ['rate_limit', 'timeout', 'server_error', 'model_not_available', 'quota_exceeded', 'auth_error', 'context_length_exceeded', 'content_filtered'];
  for (const reason of reasons ?? [])
    if (!known.includes(reason)) throw invalidField('routing.fallback_reasons', `unknown reason '${reason}'; known: ${known.join(', ')}`);
  for (const name of ['timeout_ms', 'connect_timeout_ms', 'total_timeout_ms'] as const) {
    const value = routing[name];
    if (value !== undefined && (!isFiniteNumber(value) || !(value > 0) || value > 3_600_000))
      throw invalidField(`routing.${name}`, 'expected milliseconds between 1 and 3600000');
  }
  if (routing.retries !== undefined && (!Number.isInteger(routing.retries) || (routing.retries as number) < 0 || (routing.retries as number) > 5)) {
    throw invalidField('routing.retries', 'expected an integer between 0 and 5');
  }
  if (
    routing.max_attempts !== undefined &&
    (!Number.isInteger(routing.max_attempts) || (routing.max_attempts as number) < 1 || (routing.max_attempts as number) > 20)
  ) {
    throw invalidField('routing.max_attempts', 'expected an integer between 1 and 20');
  }
  if (routing.cost_weights !== undefined) validateCostWeights(routing.cost_weights);
}

/**
 * The largest `cost_weights` entry: a weight multiplies a provider's list price (0.8 for a 20 % discount),
 * so 100 already makes a provider a hundred times dearer. An unbounded one (1e308) overflowed the weighted
 * costs to Infinity, and cost-comparison answered `provider_costs: null`.
 */
export const MAX_COST_WEIGHT = 100;

function validateCostWeights(weights: unknown): void {
  if (!isObject(weights)) throw invalidField('routing.cost_weights', `expected an object of provider → number from 0 to ${MAX_COST_WEIGHT}`);
  for (const [provider, weight] of Object.entries(weights)) {
    if (!isFiniteNumber(weight) || weight < 0 || weight > MAX_COST_WEIGHT)
      throw invalidField(`routing.cost_weights.${provider}`, `must be a number from 0 to ${MAX_COST_WEIGHT}`);
  }
}
