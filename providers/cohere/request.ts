import { refuseLegacyFunctions } from '../../core/wire/legacy-functions.ts';
import { invalidField, KeywayError } from '../../core/errors.ts';
import type { ProviderKeySettings } from '../../core/spec/plugin.ts';
import type { ChatRequest, ResponseFormat, ToolDefinition } from '../../core/spec/vocabulary.ts';
import { portableMessages } from '../../core/wire/provider-kit.ts';
import { toCohereMessages } from './messages.ts';

/** Cohere's own request fields, passed through when a client sends them. */
const NATIVE_FIELDS = ['documents', 'citation_options', 'safety_mode', 'k', 'thinking', 'strict_tools', 'priority'] as const;

/** Fields this module translates. */
const TRANSLATED_FIELDS = new Set([
  'model',
  'messages',
  'stream',
  'temperature',
  'top_p',
  'max_tokens',
  'max_completion_tokens',
  'n',
  'stop',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'seed',
  'frequency_penalty',
  'presence_penalty',
]);

/**
 * Fields dropped without a warning: Keyway's own (`provider`, `routing`), and what Keyway itself
 * covers (Cohere always reports stream usage, so `stream_options` has nothing to ask). Anything else
 * Cohere has no place for (`user`, `metadata`, `service_tier`…) is dropped with a warning, as Gemini's
 * translation does: the client asked for something it does not get (QA14 migrator 14).
 */
const SILENTLY_DROPPED = new Set(['provider', 'routing', 'stream_options']);

const MAX_STOP_SEQUENCES = 5;

/** Cohere documents `p` as 0.01–0.99 and both penalties as 0–1. */
const P_RANGE = { min: 0.01, max: 0.99 } as const;
const PENALTY_RANGE = { min: 0, max: 1 } as const;

/** The `/v2/chat` body for an OpenAI-shaped request. Things Cohere cannot honour land in `warnings`. */
export function buildCohereChatBody(request: ChatRequest, model: string, settings: ProviderKeySettings, warnings: string[]): Record<string, unknown> {
  refuseLegacyFunctions(request, 'cohere');
  if (typeof request.n === 'number' && request.n > 1) {
    throw new KeywayError('unsupported_feature', { detail: 'cohere returns one choice per request; n > 1 is not supported' }, { param: 'n' });
  }
  // Cohere's tool content takes text and documents, no image.
  const body: Record<string, unknown> = { model, messages: toCohereMessages(portableMessages(request.messages, 'cohere', warnings)) };
  if (request.stream === true) body.stream = true;
  applyLimits(body, request, settings);
  applySampling(body, request, settings, warnings);
  applyTools(body, request, warnings);
  applyResponseFormat(body, request.response_format);
  for (const field of NATIVE_FIELDS) if (request[field] !== undefined) body[field] = request[field];
  if (request.thinking !== undefined && request.thinking !== null) body.thinking = cohereThinking(request.thinking);
  warnAboutDroppedFields(request, warnings);
  return body;
}

/**
 * Cohere's `thinking` is `{type: 'enabled' | 'disabled', token_budget?}`, passed as sent. Anthropic's,
 * which an Anthropic client sends on /v1/messages (QA15 F3), names the budget `budget_tokens` and may
 * be `adaptive` (the model decides: Cohere's `enabled` without a budget); it is rewritten into Cohere's.
 */
function cohereThinking(thinking: unknown): unknown {
  if (typeof thinking !== 'object' || thinking === null || Array.isArray(thinking)) return thinking;
  const { type, budget_tokens: budget } = thinking as Record<string, unknown>;
  if (type === 'adaptive') return { type: 'enabled' };
  if (budget === undefined) return thinking;
  return { type, token_budget: budget };
}

export function cohereHeaders(apiKey: string, stream: boolean): Record<string, string> {
  return {
    authorization: `Bearer ${apiKey}`,
    'content-type': 'application/json',
    accept: stream ? 'text/event-stream' : 'application/json',
    'x-client-name': 'keyway',
  };
}

function applyLimits(body: Record<string, unknown>, request: ChatRequest, settings: ProviderKeySettings): void {
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? settings.max_tokens_default;
  if (typeof maxTokens === 'number') body.max_tokens = maxTokens;
  const stops = request.stop === null || request.stop === undefined ? [] : typeof request.stop === 'string' ? [request.stop] : request.stop;
  if (stops.length > MAX_STOP_SEQUENCES) throw invalidField('stop', `cohere accepts at most ${MAX_STOP_SEQUENCES} stop sequences; got ${stops.length}`);
  if (stops.length > 0) body.stop_sequences = stops;
}

function applySampling(body: Record<string, unknown>, request: ChatRequest, settings: ProviderKeySettings, warnings: string[]): void {
  const temperature = request.temperature ?? settings.temperature_default;
  if (typeof temperature === 'number') body.temperature = temperature;
  if (typeof request.seed === 'number') body.seed = request.seed;
  setClamped(body, 'p', 'top_p', request.top_p, P_RANGE, warnings);
  setClamped(body, 'frequency_penalty', 'frequency_penalty', request.frequency_penalty, PENALTY_RANGE, warnings);
  setClamped(body, 'presence_penalty', 'presence_penalty', request.presence_penalty, PENALTY_RANGE, warnings);
}

/**
 * Clamps into Cohere's narrower range rather than refusing: OpenAI clients send defaults such as
 * `top_p: 1` that Cohere rejects, and the nearest value Cohere accepts is what the client meant.
 */
function setClamped(
  body: Record<string, unknown>,
  target: string,
  source: string,
  value: unknown,
  range: { min: number; max: number },
  warnings: string[],
): void {
  if (typeof value !== 'number') return;
  const clamped = Math.min(range.max, Math.max(range.min, value));
  if (clamped !== value) warnings.push(`cohere: ${source} ${value} is outside Cohere's range ${range.min}–${range.max}; sent ${clamped}`);
  body[target] = clamped;
}

/** Cohere has no named-tool choice: forcing one tool means REQUIRED with only that tool sent. */
function applyTools(body: Record<string, unknown>, request: ChatRequest, warnings: string[]): void {
  const tools = request.tools ?? [];
  const choice = request.tool_choice;
  if (tools.length === 0) return;
  tools.forEach(requireFunctionTool);
  let selected: ToolDefinition[] = tools;
  if (typeof choice === 'object' && choice !== null) {
    // OpenAI's `allowed_tools` and `custom` choices have no Cohere form.
    if (choice.type !== 'function') {
      throw new KeywayError(
        'unsupported_feature',
        { detail: `cohere: tool_choice of type '${String(choice.type)}' is not supported` },
        { param: 'tool_choice.type' },
      );
    }
    selected = tools.filter((tool) => tool.function.name === choice.function.name);
    if (selected.length === 0) throw invalidField('tool_choice', `names the function '${choice.function.name}', which is not in 'tools'`);
    body.tool_choice = 'REQUIRED';
  } else if (choice === 'required') {
    body.tool_choice = 'REQUIRED';
  } else if (choice === 'none') {
    body.tool_choice = 'NONE';
  }
  body.tools = selected.map(toCohereTool);
  // Cohere's strictness is per request, not per tool: any strict tool makes all of them strict.
  if (selected.some((tool) => tool.function.strict === true)) body.strict_tools = true;
  if (request.parallel_tool_calls === false) warnings.push('cohere: parallel_tool_calls=false is not supported; the model may call several tools at once');
}

/** Cohere runs function tools only: a custom or provider-hosted tool is refused, as Anthropic's translation does. */
function requireFunctionTool(tool: ToolDefinition, position: number): void {
  if (tool.type !== 'function') {
    throw new KeywayError('unsupported_feature', { detail: `tools[${position}]: Cohere takes only function tools` }, { param: `tools[${position}].type` });
  }
}

function toCohereTool(tool: ToolDefinition): Record<string, unknown> {
  const definition: Record<string, unknown> = { name: tool.function.name, parameters: tool.function.parameters ?? { type: 'object', properties: {} } };
  if (tool.function.description !== undefined) definition.description = tool.function.description;
  return { type: 'function', function: definition };
}

/** Cohere's JSON mode is `json_object` with an optional schema, which covers both OpenAI forms. */
function applyResponseFormat(body: Record<string, unknown>, format: ResponseFormat | undefined): void {
  if (format === undefined || format === null || format.type === 'text') return;
  if (format.type === 'json_object') {
    body.response_format = { type: 'json_object' };
    return;
  }
  if (format.type === 'json_schema') {
    const schema = format.json_schema?.schema;
    body.response_format = schema === undefined ? { type: 'json_object' } : { type: 'json_object', json_schema: schema };
    return;
  }
  throw invalidField('response_format.type', `cohere supports 'text', 'json_object' and 'json_schema'; got '${(format as { type: string }).type}'`);
}

function warnAboutDroppedFields(request: ChatRequest, warnings: string[]): void {
  const native = new Set<string>(NATIVE_FIELDS);
  for (const [field, value] of Object.entries(request)) {
    // `false` and null (store: false, logprobs: false) ask for nothing, so nothing is lost by dropping them.
    if (TRANSLATED_FIELDS.has(field) || native.has(field) || SILENTLY_DROPPED.has(field) || value === undefined || value === null || value === false) continue;
    warnings.push(`cohere: '${field}' is not supported and was dropped`);
  }
}
