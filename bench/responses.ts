// Translation overhead of /v1/responses (bun bench/responses.ts): a Codex-sized request translated
// into the chat vocabulary, a result encoded as a response object, and the per-chunk stream work,
// each beside the chat path's own. Targets (issue 12): ≤ 0.05 ms per request; per stream chunk no
// more than the chat path's encoder. Exits non-zero when a target is missed.

import { bench, do_not_optimize, group, run } from 'mitata';
import { StreamObserver } from '../core/accounting/stream-observer.ts';
import { encodeChatCompletion, OpenAIStreamEncoder } from '../core/wire/openai-encoder.ts';
import { validateChatRequest } from '../core/wire/request-validation.ts';
import { SseParser } from '../core/wire/sse.ts';
import type { StreamEncoder } from '../core/spec/dialect.ts';
import type { ChatResult, StreamPart } from '../core/spec/vocabulary.ts';
import { chatRequestFromResponses, echoOf, responsesBodyFromResult, ResponsesStreamEncoder } from '../plugins/responses/index.ts';

const TOOLS = Array.from({ length: 6 }, (_, index) => ({
  type: 'function',
  name: `tool_${index}`,
  description: 'Runs a shell command in the workspace and answers its output.',
  parameters: { type: 'object', properties: { command: { type: 'array', items: { type: 'string' } }, workdir: { type: 'string' } }, required: ['command'] },
  strict: false,
}));

/** A Codex turn: instructions, a few user and assistant turns, tool calls and their outputs, reasoning items. */
const CODEX_BODY = {
  model: 'claude-sonnet-4-5',
  instructions: 'You are a coding agent running in a terminal. '.repeat(40),
  input: [
    { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Fix the failing test in src/parser.ts' }] },
    { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'x'.repeat(400) },
    { type: 'function_call', call_id: 'call_1', name: 'tool_0', arguments: '{"command":["npm","test"]}' },
    { type: 'function_call_output', call_id: 'call_1', output: 'FAIL src/parser.test.ts\n'.repeat(20) },
    { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'The parser drops the last token.' }] },
    { type: 'function_call', call_id: 'call_2', name: 'tool_0', arguments: '{"command":["cat","src/parser.ts"]}' },
    { type: 'function_call_output', call_id: 'call_2', output: 'export function parse() {}\n'.repeat(40) },
    { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Go ahead.' }] },
  ],
  tools: TOOLS,
  tool_choice: 'auto',
  parallel_tool_calls: false,
  reasoning: { effort: 'medium', summary: 'auto' },
  store: false,
  stream: true,
  include: ['reasoning.encrypted_content'],
  prompt_cache_key: 'session-1',
};

/** The same conversation as a Chat Completions body: the chat path's own per-request work is its validation. */
const CHAT_BODY = { ...chatRequestFromResponses(CODEX_BODY).request };

const RESULT: ChatResult = {
  id: 'msg_1',
  model: 'claude-sonnet-4-5',
  created: 1_700_000_000,
  choices: [
    {
      index: 0,
      message: {
        role: 'assistant',
        content: 'I fixed the parser.',
        tool_calls: [{ id: 'call_3', type: 'function', function: { name: 'tool_0', arguments: '{"command":["npm","test"]}' } }],
      },
      finishReason: { unified: 'tool-calls', raw: 'tool_use' },
    },
  ],
  usage: { inputTokens: 5000, outputTokens: 80, totalTokens: 5080, cachedInputTokens: 4000, cacheWriteInputTokens: 0, reasoningTokens: 20 },
};

const TEXT_DELTA: StreamPart = { type: 'text-delta', index: 0, text: ' the parser' };
const ARGUMENTS_DELTA: StreamPart = { type: 'tool-call-delta', index: 0, toolIndex: 0, argumentsDelta: '"npm",' };

function primedResponsesEncoder(): ResponsesStreamEncoder {
  const encoder = new ResponsesStreamEncoder({ responseId: 'resp_bench', model: 'claude-sonnet-4-5', echo: echoOf(CODEX_BODY) });
  encoder.encode({ type: 'start', id: 'msg_1', model: 'claude-sonnet-4-5', created: 1 });
  encoder.encode(TEXT_DELTA);
  return encoder;
}

function primedChatEncoder(): OpenAIStreamEncoder {
  const encoder = new OpenAIStreamEncoder(true, 'req_bench', 'claude-sonnet-4-5');
  encoder.encode({ type: 'start', id: 'msg_1', model: 'claude-sonnet-4-5', created: 1 });
  return encoder;
}

// A long stream has thousands of deltas, not millions: both encoders start over every STREAM_CHUNKS chunks,
// so the Responses encoder's running text (kept for output_text.done) stays stream-sized.
const STREAM_CHUNKS = 5000;
let responsesText = primedResponsesEncoder();
let chatText = primedChatEncoder();
let responsesCount = 0;
let chatCount = 0;
const responsesTool = new ResponsesStreamEncoder({ responseId: 'resp_bench', model: 'x', echo: echoOf({}) });
responsesTool.encode({ type: 'tool-call-start', index: 0, toolIndex: 0, id: 'call_1', name: 'tool_0' });
const chatTool = new OpenAIStreamEncoder(true, 'req_bench', 'x');

const CODEX_TEXT = JSON.stringify(CODEX_BODY);
const PREVIOUS_ID = /"previous_response_id"\s*:\s*"([\w.-]{1,200})"/;

group('per request', () => {
  // What the route does before the lifecycle when responses are stored (plugins/responses/preload.ts); a
  // body holding item references is parsed once more on top (the AI SDK's multi-turn chats).
  bench(`responses: scan for previous_response_id (clone + text + regex, ${CODEX_TEXT.length} B body)`, async () => {
    const request = new Request('http://keyway/v1/responses', { method: 'POST', body: CODEX_TEXT, headers: { 'content-length': String(CODEX_TEXT.length) } });
    const text = await request.clone().text();
    do_not_optimize([text.includes('item_reference'), PREVIOUS_ID.exec(text)]);
    do_not_optimize(await request.text());
  });
  bench(`baseline: reading the same body once (${CODEX_TEXT.length} B)`, async () => {
    const request = new Request('http://keyway/v1/responses', { method: 'POST', body: CODEX_TEXT, headers: { 'content-length': String(CODEX_TEXT.length) } });
    do_not_optimize(await request.text());
  });
  bench('responses: translate a Codex turn (chatRequestFromResponses + echo)', () =>
    do_not_optimize([chatRequestFromResponses(CODEX_BODY), echoOf(CODEX_BODY)]),
  );
  bench('chat: validateChatRequest (same conversation)', () => do_not_optimize(validateChatRequest(CHAT_BODY)));
  bench('responses: encode a result (responsesBodyFromResult + JSON)', () =>
    do_not_optimize(JSON.stringify(responsesBodyFromResult(RESULT, echoOf(CODEX_BODY), 'resp_1'))),
  );
  bench('chat: encode a result (encodeChatCompletion + JSON)', () => do_not_optimize(JSON.stringify(encodeChatCompletion(RESULT))));
});

const textEncoder = new TextEncoder();
const observer = new StreamObserver();

/** A part's bytes as streamAnswer (core/lifecycle/respond.ts) gets them: `encodeBytes` when the encoder has it. */
function frameOf(encoder: StreamEncoder, part: StreamPart): Uint8Array {
  return encoder.encodeBytes === undefined ? textEncoder.encode(encoder.encode(part)) : encoder.encodeBytes(part);
}

let responsesPathText = primedResponsesEncoder();
let chatPathText = primedChatEncoder();
let responsesPathCount = 0;
let chatPathCount = 0;

function responsesPathDelta(): Uint8Array {
  if (++responsesPathCount % STREAM_CHUNKS === 0) responsesPathText = primedResponsesEncoder();
  observer.observe(TEXT_DELTA);
  return frameOf(responsesPathText, TEXT_DELTA);
}

function chatPathDelta(): Uint8Array {
  if (++chatPathCount % STREAM_CHUNKS === 0) chatPathText = primedChatEncoder();
  observer.observe(TEXT_DELTA);
  return frameOf(chatPathText, TEXT_DELTA);
}

// Both paths run hot before mitata starts: mitata times single calls, not batches, when its two
// warm-up calls each take over 65 µs, and the first bench of this group, after the asynchronous
// per-request group, did so in most runs on a busy machine (1-3 µs averages with millisecond outliers,
// whichever of the two came first).
for (let index = 0; index < 4 * STREAM_CHUNKS; index++) {
  do_not_optimize(responsesPathDelta());
  do_not_optimize(chatPathDelta());
}

group('per stream chunk, the whole path of a part in streamAnswer (observe, encode to bytes)', () => {
  bench('responses path: text-delta', () => do_not_optimize(responsesPathDelta()));
  bench('chat path: text-delta', () => do_not_optimize(chatPathDelta()));
});

// When OpenAI serves, both paths pass the upstream's own event through: a Responses event as a
// `native-event` part, a chat chunk as an `openai-chunk` part (each as its provider stream yields it).
const NATIVE_DELTA_DATA = {
  type: 'response.output_text.delta',
  sequence_number: 7,
  item_id: 'msg_67ccd3acc8d48190a77525dc6de64b4104becb25c7b8c2f8',
  output_index: 0,
  content_index: 0,
  delta: ' the parser',
  logprobs: [],
};
const NATIVE_DELTA: StreamPart = {
  type: 'native-event',
  event: 'response.output_text.delta',
  data: NATIVE_DELTA_DATA,
  raw: JSON.stringify(NATIVE_DELTA_DATA),
  text: ' the parser',
};
const CHAT_CHUNK_DATA = {
  id: 'chatcmpl-BXn4yJ2pzZ7e6q',
  object: 'chat.completion.chunk' as const,
  created: 1_700_000_000,
  model: 'gpt-4o-mini-2024-07-18',
  service_tier: 'default',
  system_fingerprint: 'fp_5ee1a7c0de',
  choices: [{ index: 0, delta: { content: ' the parser' }, logprobs: null, finish_reason: null }],
};
const CHAT_CHUNK: StreamPart = { type: 'openai-chunk', raw: JSON.stringify(CHAT_CHUNK_DATA), chunk: CHAT_CHUNK_DATA };
const nativeEncoder = new ResponsesStreamEncoder({ responseId: 'resp_bench', model: 'gpt-4o-mini', echo: echoOf({}) });
nativeEncoder.encode({ type: 'start', id: 'resp_1', model: 'gpt-4o-mini', created: 1, native: true });
const openAIChatEncoder = new OpenAIStreamEncoder(true, 'req_bench', 'gpt-4o-mini');

group('per stream chunk when OpenAI serves (whole path: observe, encode to bytes)', () => {
  bench('responses path, OpenAI native: output_text.delta', () => {
    observer.observe(NATIVE_DELTA);
    return do_not_optimize(frameOf(nativeEncoder, NATIVE_DELTA));
  });
  bench('chat path, OpenAI: openai-chunk', () => {
    observer.observe(CHAT_CHUNK);
    return do_not_optimize(frameOf(openAIChatEncoder, CHAT_CHUNK));
  });
});

group('per stream chunk', () => {
  bench('responses: text-delta', () => {
    if (++responsesCount % STREAM_CHUNKS === 0) responsesText = primedResponsesEncoder();
    return do_not_optimize(responsesText.encode(TEXT_DELTA));
  });
  bench('chat: text-delta', () => {
    if (++chatCount % STREAM_CHUNKS === 0) chatText = primedChatEncoder();
    return do_not_optimize(chatText.encode(TEXT_DELTA));
  });
  bench('responses: tool-call-delta', () => do_not_optimize(responsesTool.encode(ARGUMENTS_DELTA)));
  bench('chat: tool-call-delta', () => do_not_optimize(chatTool.encode(ARGUMENTS_DELTA)));
});

// The WebSocket mode relays the lifecycle's SSE bytes: per event it decodes them and parses the SSE
// frame back to its JSON (plugins/responses/websocket.ts, relay). Informational: what a frame adds.
const relayDecoder = new TextDecoder();
const relayParser = new SseParser();
const relayBytes = textEncoder.encode(primedResponsesEncoder().encode(TEXT_DELTA));
group('per stream chunk, WebSocket relay', () => {
  bench('websocket relay: decode + SSE parse of one text-delta event', () =>
    do_not_optimize(relayParser.push(relayDecoder.decode(relayBytes, { stream: true }))),
  );
});

const results = await run();

function averageNs(name: string): number {
  for (const trial of results.benchmarks) if (trial.alias === name) return trial.runs[0]?.stats?.avg ?? Number.NaN;
  return Number.NaN;
}

const checks: Array<[string, boolean, string]> = [];
const scan = averageNs(`responses: scan for previous_response_id (clone + text + regex, ${CODEX_TEXT.length} B body)`);
const once = averageNs(`baseline: reading the same body once (${CODEX_TEXT.length} B)`);
console.log(`info  stored-response preload: ${((scan - once) / 1e6).toFixed(4)} ms over reading the body once`);
const translate = averageNs('responses: translate a Codex turn (chatRequestFromResponses + echo)') / 1e6;
const encode = averageNs('responses: encode a result (responsesBodyFromResult + JSON)') / 1e6;
checks.push(['request translation ≤ 0.05 ms', translate <= 0.05, `${translate.toFixed(4)} ms`]);
checks.push(['result encoding ≤ 0.05 ms', encode <= 0.05, `${encode.toFixed(4)} ms`]);
for (const kind of ['text-delta', 'tool-call-delta']) {
  const responses = averageNs(`responses: ${kind}`);
  const chat = averageNs(`chat: ${kind}`);
  // Informational: a Responses text event carries more (sequence number, item id, the running text
  // kept for output_text.done) than a chat chunk, so the encoder alone costs more per text delta.
  console.log(`info  encoder only, ${kind}: ${responses.toFixed(0)} ns vs chat ${chat.toFixed(0)} ns`);
}
console.log(
  `info  WebSocket relay per event: ${averageNs('websocket relay: decode + SSE parse of one text-delta event').toFixed(0)} ns on top of the SSE path`,
);
const nativePath = averageNs('responses path, OpenAI native: output_text.delta');
const openAIChatPath = averageNs('chat path, OpenAI: openai-chunk');
console.log(`info  OpenAI serving, whole path per text delta: ${nativePath.toFixed(0)} ns (Responses, native) vs ${openAIChatPath.toFixed(0)} ns (chat)`);
const responsesPath = averageNs('responses path: text-delta');
const chatPath = averageNs('chat path: text-delta');
// The target: the per-chunk path costs no more than the chat path's, with 10% for noise on a busy machine.
checks.push([
  "text-delta per chunk (whole path) ≤ the chat path's",
  responsesPath <= chatPath * 1.1,
  `${responsesPath.toFixed(0)} ns vs ${chatPath.toFixed(0)} ns`,
]);
let failed = false;
for (const [name, passed, figure] of checks) {
  console.log(`${passed ? 'PASS' : 'MISS'}  ${name}: ${figure}`);
  failed ||= !passed;
}
process.exit(failed ? 1 : 0);
