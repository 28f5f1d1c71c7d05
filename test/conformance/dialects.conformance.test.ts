// Every in-tree dialect through the dialect conformance suite (dialect.ts): the OpenAI dialect the
// core serves on /v1/chat/completions and the Anthropic Messages plugin on /v1/messages. The
// readers below are each dialect's client view: they throw on a shape its clients would not read.

import { chatCompletionsOperation, embeddingsOperation, openAIDialect } from '../../core/wire/openai-dialect.ts';
import { anthropicMessagesPlugin, countTokensOperation, messagesOperation } from '../../plugins/anthropic-messages/index.ts';
import type { PluginDefinition } from '../../core/spec/plugin.ts';
import { standaloneServices } from '../../core/services.ts';
import { createLogger } from '../../core/logger.ts';
import { describeDialectConformance } from './dialect.ts';
import { responsesOperation, responsesPlugin } from '../../plugins/responses/index.ts';
import { checkResponsesStream, parseResponsesSse } from '../responses/event-sequence.ts';

type Json = Record<string, unknown>;

function fail(what: string, value: unknown): never {
  throw new Error(`${what}: ${JSON.stringify(value).slice(0, 500)}`);
}

function readChatCompletionText(body: unknown): string {
  const completion = body as { object?: unknown; choices?: Array<{ message?: { role?: unknown; content?: unknown } }> };
  const message = completion.choices?.[0]?.message;
  if (completion.object !== 'chat.completion' || message?.role !== 'assistant' || typeof message.content !== 'string') fail('not a chat.completion', body);
  return message.content;
}

/** Content deltas in order; a Chat Completions stream ends with `[DONE]`. */
function readChatCompletionStream(payloads: string[]): string {
  if (payloads.at(-1) !== '[DONE]') fail('the stream does not end with [DONE]', payloads.at(-1));
  let text = '';
  for (const payload of payloads.slice(0, -1)) {
    const chunk = JSON.parse(payload) as { object?: unknown; choices?: Array<{ delta?: { content?: unknown } }> };
    if (chunk.object !== 'chat.completion.chunk') fail('not a chat.completion.chunk', chunk);
    for (const choice of chunk.choices ?? []) if (typeof choice.delta?.content === 'string') text += choice.delta.content;
  }
  return text;
}

function readMessageText(body: unknown): string {
  const message = body as { type?: unknown; role?: unknown; content?: Array<{ type?: unknown; text?: unknown }> };
  if (message.type !== 'message' || message.role !== 'assistant' || !Array.isArray(message.content)) fail('not an Anthropic message', body);
  return message.content.map((block) => (block.type === 'text' && typeof block.text === 'string' ? block.text : '')).join('');
}

/** Text deltas in order; a Messages stream opens with message_start and closes with message_stop. */
function readMessageStream(payloads: string[]): string {
  const events = payloads.map((payload) => JSON.parse(payload) as Json);
  if (events[0]?.type !== 'message_start' || events.at(-1)?.type !== 'message_stop')
    fail(
      'not a Messages stream',
      events.map((event) => event.type),
    );
  let text = '';
  for (const event of events) {
    const delta = event.delta as Json | undefined;
    if (event.type === 'content_block_delta' && delta?.type === 'text_delta' && typeof delta.text === 'string') text += delta.text;
  }
  return text;
}

describeDialectConformance('OpenAI Chat Completions (core)', {
  dialect: openAIDialect,
  operations: [chatCompletionsOperation, embeddingsOperation],
  path: '/v1/chat/completions',
  buildRequest: ({ model, text, stream }) => ({ body: { model, messages: [{ role: 'user', content: text }], stream } }),
  readAnswerText: readChatCompletionText,
  readStreamText: readChatCompletionStream,
});

describeDialectConformance('Anthropic Messages (plugin)', {
  plugin: anthropicMessagesPlugin as PluginDefinition,
  operations: [messagesOperation, countTokensOperation(standaloneServices({ logger: createLogger('silent') }).errors)],
  path: '/v1/messages',
  buildRequest: ({ model, text, stream }) => ({
    body: { model, max_tokens: 256, messages: [{ role: 'user', content: text }], stream },
    headers: { 'anthropic-version': '2023-06-01' },
  }),
  readAnswerText: readMessageText,
  readStreamText: readMessageStream,
});

function readResponseText(body: unknown): string {
  const response = body as { object?: unknown; status?: unknown; output?: Array<{ type?: unknown; content?: Array<{ type?: unknown; text?: unknown }> }> };
  if (response.object !== 'response' || response.status !== 'completed' || !Array.isArray(response.output)) fail('not a completed response', body);
  let text = '';
  for (const item of response.output)
    for (const part of item.type === 'message' ? (item.content ?? []) : []) if (part.type === 'output_text') text += String(part.text);
  return text;
}

/** The payloads back into SSE (their `type` is the event name) for the sequence checker. */
function readResponseStream(payloads: string[]): string {
  const text = payloads.map((payload) => `event: ${(JSON.parse(payload) as Json).type}\ndata: ${payload}\n\n`).join('');
  const checked = checkResponsesStream(parseResponsesSse(text));
  if (checked.terminal !== 'response.completed') fail('the stream did not complete', checked.terminal);
  return checked.text;
}

describeDialectConformance('OpenAI Responses (plugin)', {
  plugin: responsesPlugin as PluginDefinition,
  operations: [responsesOperation],
  path: '/v1/responses',
  buildRequest: ({ model, text, stream }) => ({ body: { model, input: text, stream } }),
  readAnswerText: readResponseText,
  readStreamText: readResponseStream,
});
