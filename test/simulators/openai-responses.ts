// OpenAI's own Responses API (`POST /v1/responses`) in the simulator: the same deterministic model as
// Chat Completions (the input read as chat messages, so the same conversation counts the same
// tokens), answered as a response object, or streamed as typed events with `sequence_number`. A
// `web_search` tool runs a "search" (a web_search_call item and a cited answer); a reasoning model
// asked for an effort thinks, and with `include: ["reasoning.encrypted_content"]` returns that
// reasoning sealed, to be replayed in a later input.

import { countTokens, echoReply, splitForStream } from './common.ts';
import { contentText, isRecord, planReply, promptTokensFor, randomToken, type JsonObject, type StreamPlan } from './openai-behaviour.ts';
import { sealReasoning } from './openai-responses-validation.ts';
import { isReasoningModel } from './openai-validation.ts';

const WEB_SEARCH = /^web_search/;

/** Content parts as chat parts (text and images), so the chat planner reads them. */
function chatContent(content: unknown): unknown {
  if (!Array.isArray(content)) return content;
  return content.map((part) => {
    if (!isRecord(part)) return part;
    if (part.type === 'input_text' || part.type === 'output_text') return { type: 'text', text: part.text };
    if (part.type === 'input_image') return { type: 'image_url', image_url: { url: part.image_url ?? part.file_id } };
    return { type: 'text', text: '' };
  });
}

/** The input items as Chat Completions messages, instructions first: what the planner and the token count read. */
export function chatMessagesOf(body: JsonObject): JsonObject[] {
  const messages: JsonObject[] = [];
  if (typeof body.instructions === 'string' && body.instructions !== '') messages.push({ role: 'system', content: body.instructions });
  const input = typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : Array.isArray(body.input) ? body.input : [];
  for (const item of input) {
    if (!isRecord(item)) continue;
    const type = item.type ?? 'message';
    if (type === 'message') messages.push({ role: item.role, content: chatContent(item.content) });
    else if (type === 'function_call' || type === 'custom_tool_call') {
      const call = { id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments ?? JSON.stringify({ input: item.input }) } };
      const last = messages.at(-1);
      if (last?.role === 'assistant' && Array.isArray(last.tool_calls)) last.tool_calls.push(call);
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (type === 'function_call_output' || type === 'custom_tool_call_output')
      messages.push({
        role: 'tool',
        tool_call_id: item.call_id,
        content: typeof item.output === 'string' ? item.output : contentText(chatContent(item.output)),
      });
  }
  return messages;
}

/** The body as the chat planner reads it. */
function chatBodyOf(body: JsonObject): JsonObject {
  const tools = Array.isArray(body.tools) ? body.tools.filter((tool) => isRecord(tool) && tool.type === 'function') : [];
  const choice = body.tool_choice;
  return {
    model: body.model,
    messages: chatMessagesOf(body),
    tools: (tools as JsonObject[]).map((tool) => ({ type: 'function', function: { name: tool.name, parameters: tool.parameters } })),
    tool_choice: isRecord(choice) && choice.type === 'function' ? { type: 'function', function: { name: choice.name } } : choice,
    parallel_tool_calls: body.parallel_tool_calls,
    max_completion_tokens: body.max_output_tokens,
    text: body.text,
    response_format: isRecord(body.text) && isRecord(body.text.format) ? body.text.format : undefined,
  };
}

function lastUserText(messages: JsonObject[]): string {
  for (let index = messages.length - 1; index >= 0; index--) if (messages[index]?.role === 'user') return contentText(messages[index]?.content);
  return '';
}

export interface ResponsesOutcome {
  response: JsonObject;
  /** The output items, in order. */
  output: JsonObject[];
  usage: { input_tokens: number; cached_tokens: number; output_tokens: number; reasoning_tokens: number };
}

function messageItem(text: string, annotations: JsonObject[]): JsonObject {
  return {
    id: `msg_${randomToken(48, '0123456789abcdef')}`,
    type: 'message',
    status: 'completed',
    role: 'assistant',
    content: [{ type: 'output_text', text, annotations, logprobs: [] }],
  };
}

/** Plans the answer to a validated request; `cacheSeen`: its prompt_cache_key was seen before (half the prompt is cached). */
export function planResponse(body: JsonObject, cacheSeen: boolean): ResponsesOutcome {
  const chat = chatBodyOf(body);
  const messages = chat.messages as JsonObject[];
  const model = String(body.model);
  const output: JsonObject[] = [];
  const effort = isRecord(body.reasoning) ? body.reasoning.effort : undefined;
  const promptTokens = promptTokensFor(messages);
  // As on Chat Completions: a reasoning model asked for an effort thinks before it answers.
  const reasoningTokens = isReasoningModel(model) && typeof effort === 'string' && effort !== 'none' ? Math.max(8, Math.ceil(promptTokens / 2)) : 0;
  if (reasoningTokens > 0) {
    const item: JsonObject = { id: `rs_${randomToken(48, '0123456789abcdef')}`, type: 'reasoning', summary: [] };
    if (Array.isArray(body.include) && body.include.includes('reasoning.encrypted_content')) item.encrypted_content = sealReasoning(model, reasoningTokens);
    output.push(item);
  }
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const searches = body.tool_choice !== 'none' && tools.some((tool) => isRecord(tool) && WEB_SEARCH.test(String(tool.type)));
  let completionTokens: number;
  let finishReason: string;
  if (searches) {
    const query = lastUserText(messages);
    output.push({ id: `ws_${randomToken(48, '0123456789abcdef')}`, type: 'web_search_call', status: 'completed', action: { type: 'search', query } });
    const text = `Searched: ${echoReply(query)}`;
    output.push(
      messageItem(text, [{ type: 'url_citation', start_index: 0, end_index: text.length, url: 'https://example.com/search', title: 'Example result' }]),
    );
    completionTokens = countTokens(text);
    finishReason = 'stop';
  } else {
    const reply = planReply(chat, { allowToolCalls: true });
    if (reply.content !== null) output.push(messageItem(reply.content, []));
    for (const call of reply.toolCalls)
      output.push({
        id: `fc_${randomToken(48, '0123456789abcdef')}`,
        type: 'function_call',
        status: 'completed',
        call_id: call.id,
        name: call.name,
        arguments: call.arguments,
      });
    completionTokens = reply.completionTokens;
    finishReason = reply.finishReason;
  }
  const outputTokens = completionTokens + reasoningTokens;
  const cached = cacheSeen ? Math.floor(promptTokens / 2) : 0;
  const incomplete = finishReason === 'length';
  // As OpenAI: the item the model stopped in is incomplete.
  const cut = output.findLast((item) => item.type === 'message' || item.type === 'function_call');
  if (incomplete && cut !== undefined) cut.status = 'incomplete';
  const response: JsonObject = {
    id: `resp_${randomToken(48, '0123456789abcdef')}`,
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status: incomplete ? 'incomplete' : 'completed',
    background: false,
    error: null,
    incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: body.max_tool_calls ?? null,
    model,
    output,
    parallel_tool_calls: body.parallel_tool_calls !== false,
    previous_response_id: null,
    // OpenAI names a reasoning model's effort (its default, medium, when the request named none); null for others.
    reasoning: { effort: isReasoningModel(model) ? (effort ?? 'medium') : null, summary: null },
    service_tier: typeof body.service_tier === 'string' && body.service_tier !== 'auto' ? body.service_tier : 'default',
    store: body.store !== false,
    temperature: body.temperature ?? 1,
    text: isRecord(body.text) ? { format: { type: 'text' }, ...body.text } : { format: { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools,
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    usage: {
      input_tokens: promptTokens,
      input_tokens_details: { cached_tokens: cached },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: reasoningTokens },
      total_tokens: promptTokens + outputTokens,
    },
    user: body.user ?? null,
    metadata: isRecord(body.metadata) ? body.metadata : {},
  };
  return { response, output, usage: { input_tokens: promptTokens, cached_tokens: cached, output_tokens: outputTokens, reasoning_tokens: reasoningTokens } };
}

/** An item as `output_item.added` shows it: in progress, its text and arguments still empty. */
function openedItem(item: JsonObject): JsonObject {
  if (item.type === 'message') return { ...item, status: 'in_progress', content: [] };
  if (item.type === 'function_call') return { ...item, status: 'in_progress', arguments: '' };
  if (item.type === 'web_search_call') return { id: item.id, type: 'web_search_call', status: 'in_progress' };
  if (item.type === 'reasoning') return { id: item.id, type: 'reasoning', summary: [] };
  return item;
}

/**
 * The typed events of a stream, each `event: <type>` with `sequence_number` from 0: created and
 * in_progress; per item added, its own events, done; completed (or incomplete). Content frames are
 * the deltas, where mid-stream faults strike.
 */
export function responsesStream(outcome: ResponsesOutcome): StreamPlan {
  let sequence = 0;
  const frame = (type: string, fields: JsonObject): string => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`;
  const inProgress = { ...outcome.response, status: 'in_progress', output: [], usage: null, incomplete_details: null };
  const leading = [frame('response.created', { response: inProgress }), frame('response.in_progress', { response: inProgress })];
  const content: string[] = [];
  outcome.output.forEach((item, outputIndex) => {
    const at = { item_id: item.id, output_index: outputIndex };
    content.push(frame('response.output_item.added', { output_index: outputIndex, item: openedItem(item) }));
    if (item.type === 'message') {
      const part = (item.content as JsonObject[])[0] as JsonObject;
      const text = String(part.text);
      content.push(frame('response.content_part.added', { ...at, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }));
      for (const delta of splitForStream(text)) content.push(frame('response.output_text.delta', { ...at, content_index: 0, delta, logprobs: [] }));
      (part.annotations as JsonObject[]).forEach((annotation, annotationIndex) =>
        content.push(frame('response.output_text.annotation.added', { ...at, content_index: 0, annotation_index: annotationIndex, annotation })),
      );
      content.push(frame('response.output_text.done', { ...at, content_index: 0, text, logprobs: [] }));
      content.push(frame('response.content_part.done', { ...at, content_index: 0, part }));
    } else if (item.type === 'function_call') {
      for (const delta of splitForStream(String(item.arguments))) content.push(frame('response.function_call_arguments.delta', { ...at, delta }));
      content.push(frame('response.function_call_arguments.done', { ...at, name: item.name, arguments: item.arguments }));
    } else if (item.type === 'web_search_call') {
      for (const stage of ['in_progress', 'searching', 'completed']) content.push(frame(`response.web_search_call.${stage}`, at));
    }
    content.push(frame('response.output_item.done', { output_index: outputIndex, item }));
  });
  const closing = outcome.response.status === 'incomplete' ? 'response.incomplete' : 'response.completed';
  const trailing = [frame(closing, { response: outcome.response })];
  const errorFrame = `event: error\ndata: ${JSON.stringify({ type: 'error', code: 'server_error', message: 'The server had an error while processing your request. Sorry about that!', param: null, sequence_number: 9999 })}\n\n`;
  return { leading, content, trailing, errorFrame };
}
