// The gateway-side half of the provider conformance suite: one simulator and one gateway per
// provider, plus readers for what a client sees (JSON answers, SSE streams assembled the way an
// OpenAI client assembles them) and for the usage row the gateway wrote.

import { afterAll, beforeAll, beforeEach } from 'bun:test';
import type { RecordedRequest, SimulatorHandle } from '../simulators/common.ts';
import { addProviderKeys, call, flushUsage, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { JsonObject } from './native-answers.ts';
import type { ProviderDescriptor } from './provider-descriptors.ts';

export interface Harness {
  descriptor: ProviderDescriptor;
  simulator: SimulatorHandle;
  gateway: TestGateway;
}

/**
 * Registers the lifecycle hooks of one provider's describe block. Each provider gets a gateway of
 * its own: a rejected key or a degraded provider in one block must not leak into another.
 */
export function useHarness(descriptor: ProviderDescriptor): () => Harness {
  let harness: Harness | undefined;
  beforeAll(async () => {
    harness = await startHarness(descriptor);
  });
  afterAll(async () => {
    await stopHarness(harness);
  });
  beforeEach(() => harness?.simulator.reset());
  return () => {
    if (harness === undefined) throw new Error('the conformance harness has not started');
    return harness;
  };
}

export async function startHarness(descriptor: ProviderDescriptor): Promise<Harness> {
  const simulator = descriptor.startSimulator(descriptor.apiKey);
  const gateway = await startTestGateway({ env: descriptor.environment(simulator) });
  await addProviderKeys(gateway, [{ name: descriptor.name, api_key: descriptor.apiKey }]);
  return { descriptor, simulator, gateway };
}

export async function stopHarness(harness: Harness | undefined): Promise<void> {
  await harness?.gateway.stop();
  await harness?.simulator.stop();
}

/** A gateway of the test's own, for scenarios that change health state the rest of the block relies on. */
export async function withPrivateHarness(descriptor: ProviderDescriptor, run: (harness: Harness) => Promise<void>): Promise<void> {
  const harness = await startHarness(descriptor);
  try {
    await run(harness);
  } finally {
    await stopHarness(harness);
  }
}

export type Message = JsonObject;

export function chatBody(harness: Harness, messages: Message[], extra: JsonObject = {}): JsonObject {
  return { model: harness.descriptor.model, messages, ...extra };
}

export interface ChatAnswer {
  response: Response;
  body: JsonObject;
}

export async function postChat(harness: Harness, body: JsonObject): Promise<ChatAnswer> {
  const response = await call(harness.gateway, 'POST', '/v1/chat/completions', body);
  return { response, body: (await response.json()) as JsonObject };
}

export interface AssembledToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface StreamAnswer {
  response: Response;
  /** Every `data:` payload but `[DONE]`, parsed. */
  chunks: JsonObject[];
  /** Whether the last payload was `[DONE]`. */
  done: boolean;
  /** Error payloads (`{"error": …}`) in the stream. */
  errors: JsonObject[];
  text: string;
  toolCalls: AssembledToolCall[];
  finishReasons: string[];
  usage: JsonObject | undefined;
  firstDelta: JsonObject | undefined;
}

interface ToolCallDelta {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

/** Reads an SSE answer the way an OpenAI client does: content appended, tool calls joined by index. */
export async function readStreamAnswer(response: Response): Promise<StreamAnswer> {
  const payloads = await readSse(response);
  const answer: StreamAnswer = {
    response,
    chunks: [],
    done: payloads.at(-1) === '[DONE]',
    errors: [],
    text: '',
    toolCalls: [],
    finishReasons: [],
    usage: undefined,
    firstDelta: undefined,
  };
  for (const payload of payloads) {
    if (payload === '[DONE]') continue;
    const chunk = JSON.parse(payload) as JsonObject;
    if (chunk.error !== undefined) {
      answer.errors.push(chunk);
      continue;
    }
    answer.chunks.push(chunk);
    if (typeof chunk.usage === 'object' && chunk.usage !== null) answer.usage = chunk.usage as JsonObject;
    const choices = (Array.isArray(chunk.choices) ? chunk.choices : []) as Array<{ delta?: JsonObject; finish_reason?: string | null }>;
    for (const choice of choices) {
      const delta = choice.delta ?? {};
      answer.firstDelta ??= delta;
      if (typeof delta.content === 'string') answer.text += delta.content;
      for (const toolDelta of (delta.tool_calls ?? []) as ToolCallDelta[]) {
        const index = toolDelta.index ?? 0;
        const toolCall = (answer.toolCalls[index] ??= { id: '', name: '', arguments: '' });
        if (toolDelta.id !== undefined) toolCall.id = toolDelta.id;
        if (toolDelta.function?.name !== undefined) toolCall.name += toolDelta.function.name;
        if (toolDelta.function?.arguments !== undefined) toolCall.arguments += toolDelta.function.arguments;
      }
      if (typeof choice.finish_reason === 'string') answer.finishReasons.push(choice.finish_reason);
    }
  }
  return answer;
}

export async function streamChat(harness: Harness, body: JsonObject): Promise<StreamAnswer> {
  const response = await call(harness.gateway, 'POST', '/v1/chat/completions', { ...body, stream: true });
  return readStreamAnswer(response);
}

/** The simulator's record of the one inference request a test made. */
export function lastNativeRequest(harness: Harness): RecordedRequest {
  const requests = harness.simulator.inferenceRequests();
  const last = requests.at(-1);
  if (last === undefined) throw new Error(`${harness.descriptor.name} received no inference request`);
  return last;
}

export function nativeBody(harness: Harness): JsonObject {
  return lastNativeRequest(harness).body as JsonObject;
}

export type UsageRecord = Awaited<ReturnType<TestGateway['runtime']['store']['listUsage']>>[number];

/** The usage row the gateway wrote for a request, found by the X-Request-Id it answered. */
export async function usageRowFor(harness: Harness, response: Response): Promise<UsageRecord> {
  const requestId = response.headers.get('x-request-id');
  await flushUsage(harness.gateway);
  const rows = await harness.gateway.runtime.store.listUsage('default');
  const row = rows.find((candidate) => candidate.requestId === requestId);
  if (row === undefined) throw new Error(`no usage row for request ${String(requestId)}`);
  return row;
}

/** The first message of an answer, with OpenAI's fields. */
export function firstChoice(body: JsonObject): { message: JsonObject; finish_reason: unknown } {
  const choices = Array.isArray(body.choices) ? (body.choices as Array<{ message: JsonObject; finish_reason: unknown }>) : [];
  const first = choices[0];
  if (first === undefined) throw new Error(`the answer has no choices: ${JSON.stringify(body).slice(0, 300)}`);
  return first;
}

export function toolCallsOf(message: JsonObject): AssembledToolCall[] {
  const calls = (Array.isArray(message.tool_calls) ? message.tool_calls : []) as Array<{ id: string; function: { name: string; arguments: string } }>;
  return calls.map((toolCall) => ({ id: toolCall.id, name: toolCall.function.name, arguments: toolCall.function.arguments }));
}

/** The assistant turn a client sends back after tool calls, as OpenAI clients build it. */
export function assistantTurn(toolCalls: AssembledToolCall[]): Message {
  return {
    role: 'assistant',
    content: null,
    tool_calls: toolCalls.map((toolCall) => ({ id: toolCall.id, type: 'function', function: { name: toolCall.name, arguments: toolCall.arguments } })),
  };
}
