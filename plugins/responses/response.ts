// Keyway's results → the Responses API `response` object: output items (reasoning, message,
// function calls), status, usage with cached and reasoning tokens, and the request's settings echoed.

import type { ChatMessage, ChatResult, FinishReason, Usage } from '../../core/spec/vocabulary.ts';
import { customInputFromArguments } from './request.ts';

type Json = Record<string, unknown>;

export interface ResponsesUsageBody {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export function responsesUsageFromUsage(usage: Usage | undefined): ResponsesUsageBody {
  return {
    input_tokens: usage?.inputTokens ?? 0,
    input_tokens_details: { cached_tokens: usage?.cachedInputTokens ?? 0 },
    output_tokens: usage?.outputTokens ?? 0,
    output_tokens_details: { reasoning_tokens: usage?.reasoningTokens ?? 0 },
    total_tokens: usage?.totalTokens ?? (usage === undefined ? 0 : usage.inputTokens + usage.outputTokens),
  };
}

function randomId(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll('-', '')}`;
}

const RESPONSE_PREFIX = 'resp_';

export const newResponseId = (): string => randomId('resp');

/**
 * Ids for the items of one response: `<prefix>_<the response id's 32 hex digits><o|i><n>` (o for its
 * output, i for its input), so an item_reference leads to the stored response holding the item
 * without an index of items to write and keep.
 */
export class ItemIds {
  private readonly key: string;
  private count = 0;

  constructor(
    responseId: string,
    private readonly side: 'o' | 'i' = 'o',
  ) {
    this.key = responseId.startsWith(RESPONSE_PREFIX) ? responseId.slice(RESPONSE_PREFIX.length) : responseId;
  }

  next(prefix: string): string {
    return `${prefix}_${this.key}${this.side}${(this.count++).toString(36)}`;
  }
}

// Keyway's response ids carry 32 hex digits; a provider's own (OpenAI's, when it serves natively) more.
const ITEM_ID = /^[a-z]{1,8}_([0-9a-f]{24,64})[oi][0-9a-z]{1,8}$/;

/** The id of the response an item id was made for (ItemIds), if it is one of Keyway's. */
export function responseIdOfItem(itemId: string): string | undefined {
  const key = ITEM_ID.exec(itemId)?.[1];
  return key === undefined ? undefined : `${RESPONSE_PREFIX}${key}`;
}

export function customToolCallItem(id: string, callId: string, name: string, input: string, status: string): Json {
  return { id, type: 'custom_tool_call', status, call_id: callId, name, input };
}

/** completed, or incomplete with its reason (the Responses API's two end states of a served call). */
export function statusFromFinish(finishReason: FinishReason | undefined): { status: 'completed' | 'incomplete'; incomplete_details: Json | null } {
  if (finishReason?.unified === 'length') return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
  if (finishReason?.unified === 'content-filter') return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
  return { status: 'completed', incomplete_details: null };
}

/** What the response object echoes of the request, as OpenAI does; built once per request. */
export interface ResponseEcho {
  instructions: string | null;
  previous_response_id: string | null;
  max_output_tokens: number | null;
  metadata: Json;
  parallel_tool_calls: boolean;
  reasoning: { effort: string | null; summary: string | null };
  store: boolean;
  temperature: number | null;
  text: Json;
  tool_choice: unknown;
  tools: unknown[];
  top_p: number | null;
  truncation: string;
  user: string | null;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' ? value : null;
}

export function echoOf(body: Json): ResponseEcho {
  const reasoning = (typeof body.reasoning === 'object' && body.reasoning !== null ? body.reasoning : {}) as Json;
  const text = typeof body.text === 'object' && body.text !== null ? (body.text as Json) : {};
  return {
    instructions: typeof body.instructions === 'string' ? body.instructions : null,
    previous_response_id: typeof body.previous_response_id === 'string' ? body.previous_response_id : null,
    max_output_tokens: numberOrNull(body.max_output_tokens),
    metadata: typeof body.metadata === 'object' && body.metadata !== null ? (body.metadata as Json) : {},
    parallel_tool_calls: body.parallel_tool_calls !== false,
    reasoning: {
      effort: typeof reasoning.effort === 'string' ? reasoning.effort : null,
      summary: typeof reasoning.summary === 'string' ? reasoning.summary : null,
    },
    // Whether it was kept: the dialect sets it once it knows (store may be off for the gateway).
    store: false,
    temperature: numberOrNull(body.temperature),
    text: { ...text, format: text.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: Array.isArray(body.tools) ? body.tools : [],
    top_p: numberOrNull(body.top_p),
    truncation: typeof body.truncation === 'string' ? body.truncation : 'disabled',
    user: typeof body.user === 'string' ? body.user : null,
  };
}

export interface ResponseShell {
  id: string;
  createdAt: number;
  model: string;
  echo: ResponseEcho;
}

/** The response object in a given state; `output` and `usage` are filled as the call goes. */
export function responseObject(
  shell: ResponseShell,
  state: { status: string; output: Json[]; usage: ResponsesUsageBody | null; error?: Json | null; incomplete_details?: Json | null },
): Json {
  return {
    id: shell.id,
    object: 'response',
    created_at: shell.createdAt,
    status: state.status,
    background: false,
    error: state.error ?? null,
    incomplete_details: state.incomplete_details ?? null,
    model: shell.model,
    output: state.output,
    usage: state.usage,
    ...shell.echo,
  };
}

function textOf(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) if (part.type === 'text' && typeof part.text === 'string') text += part.text;
  return text;
}

export function reasoningItem(id: string, text: string): Json {
  return { id, type: 'reasoning', summary: text === '' ? [] : [{ type: 'summary_text', text }] };
}

export function messageItem(id: string, text: string, status: string): Json {
  return { id, type: 'message', status, role: 'assistant', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }] };
}

export function functionCallItem(id: string, callId: string, name: string, argumentsText: string, status: string): Json {
  return { id, type: 'function_call', status, call_id: callId, name, arguments: argumentsText };
}

const NO_CUSTOM_TOOLS: ReadonlySet<string> = new Set();

/** Reasoning first, then the text, then the calls: the order OpenAI's models produce them in. */
export function outputItemsFromMessage(message: ChatMessage, ids: ItemIds, customTools: ReadonlySet<string> = NO_CUSTOM_TOOLS): Json[] {
  const items: Json[] = [];
  const reasoning = typeof message.reasoning_content === 'string' ? message.reasoning_content : '';
  if (reasoning !== '') items.push(reasoningItem(ids.next('rs'), reasoning));
  const text = textOf(message.content);
  const refusal = typeof message.refusal === 'string' ? message.refusal : '';
  if (refusal !== '') {
    items.push({ id: ids.next('msg'), type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'refusal', refusal }] });
  } else if (text !== '' || (message.tool_calls ?? []).length === 0) {
    items.push(messageItem(ids.next('msg'), text, 'completed'));
  }
  for (const call of message.tool_calls ?? []) {
    const { name, arguments: argumentsText } = call.function;
    items.push(
      customTools.has(name)
        ? customToolCallItem(ids.next('ctc'), call.id, name, customInputFromArguments(argumentsText), 'completed')
        : functionCallItem(ids.next('fc'), call.id, name, argumentsText, 'completed'),
    );
  }
  return items;
}

/** The kinds of output item that carry a status. */
const ITEMS_WITH_STATUS: ReadonlySet<unknown> = new Set(['message', 'function_call', 'custom_tool_call']);

/**
 * An incomplete response's last item with a status is `incomplete`: the model stopped there (at
 * max_output_tokens or a content filter), as OpenAI marks it; the items before it are whole.
 */
export function markCutItem(output: Json[]): void {
  const index = output.findLastIndex((item) => ITEMS_WITH_STATUS.has(item.type));
  const item = output[index];
  if (item !== undefined) output[index] = { ...item, status: 'incomplete' };
}

export function responsesBodyFromResult(result: ChatResult, echo: ResponseEcho, id: string, customTools: ReadonlySet<string> = NO_CUSTOM_TOOLS): Json {
  const choice = result.choices[0];
  const { status, incomplete_details } = statusFromFinish(choice?.finishReason);
  const shell: ResponseShell = { id, createdAt: result.created || Math.floor(Date.now() / 1000), model: result.model, echo };
  const output = choice === undefined ? [] : outputItemsFromMessage(choice.message, new ItemIds(id), customTools);
  if (status === 'incomplete') markCutItem(output);
  return withProviderFields(responseObject(shell, { status, incomplete_details, output, usage: responsesUsageFromUsage(result.usage) }), result.extraFields);
}

/**
 * A provider's own answer fields (Perplexity's `citations`, `search_results`) on the response object,
 * as chat hands them on (until QA20 they were dropped here); they never replace a field of its own.
 */
export function withProviderFields(response: Json, fields: Readonly<Record<string, unknown>> | undefined): Json {
  if (fields === undefined) return response;
  const added: Json = {};
  for (const [name, value] of Object.entries(fields)) if (!(name in response)) added[name] = value as Json[string];
  return { ...response, ...added };
}
