// Per-chunk cost of a text delta on the Responses stream path beside the chat path's, measured
// interleaved (A, B, A, B…) in short rounds, reporting the median and the fastest round of each: on a
// shared, busy machine mitata's sequential runs drift more than the difference being measured.
// Run: bun bench/responses-chunk-ab.ts [rounds] [iterations per round]
// KEYWAY_COMPARE_CHECKOUT=/path/to/other/checkout adds that checkout's Responses encoder (before/after).

import { StreamObserver } from '../core/accounting/stream-observer.ts';
import { OpenAIStreamEncoder } from '../core/wire/openai-encoder.ts';
import type { StreamEncoder } from '../core/spec/dialect.ts';
import type { StreamPart } from '../core/spec/vocabulary.ts';
import { echoOf, ResponsesStreamEncoder } from '../plugins/responses/index.ts';

const ROUNDS = Number(process.argv[2] ?? 40);
const ITERATIONS = Number(process.argv[3] ?? 5000);
const TEXT_DELTA: StreamPart = { type: 'text-delta', index: 0, text: ' the parser' };
const textEncoder = new TextEncoder();
const observer = new StreamObserver();
let sink = 0;

/** A part's bytes as streamAnswer (core/lifecycle/respond.ts) gets them: `encodeBytes` when the encoder has it. */
function frameOf(encoder: StreamEncoder, part: StreamPart): Uint8Array {
  return encoder.encodeBytes === undefined ? textEncoder.encode(encoder.encode(part)) : encoder.encodeBytes(part);
}

/** One stream of ITERATIONS deltas through the whole per-part path (observe, encode, bytes), by one build's encoder. */
function roundOf(Encoder: typeof ResponsesStreamEncoder): void {
  const encoder = new Encoder({ responseId: 'resp_bench', model: 'claude-sonnet-4-5', echo: echoOf({}) });
  encoder.encode({ type: 'start', id: 'msg_1', model: 'claude-sonnet-4-5', created: 1 });
  encoder.encode(TEXT_DELTA);
  for (let index = 0; index < ITERATIONS; index++) {
    observer.observe(TEXT_DELTA);
    sink += frameOf(encoder, TEXT_DELTA).length;
  }
  sink += encoder.end().length;
}

const compareCheckout = process.env.KEYWAY_COMPARE_CHECKOUT;
const OtherEncoder: typeof ResponsesStreamEncoder | undefined =
  compareCheckout === undefined ? undefined : (await import(`${compareCheckout}/plugins/responses/index.ts`)).ResponsesStreamEncoder;

function otherRound(): void {
  if (OtherEncoder !== undefined) roundOf(OtherEncoder);
}

const responsesRound = (): void => roundOf(ResponsesStreamEncoder);

function chatRound(): void {
  const encoder = new OpenAIStreamEncoder(true, 'req_bench', 'claude-sonnet-4-5');
  encoder.encode({ type: 'start', id: 'msg_1', model: 'claude-sonnet-4-5', created: 1 });
  for (let index = 0; index < ITERATIONS; index++) {
    observer.observe(TEXT_DELTA);
    sink += frameOf(encoder, TEXT_DELTA).length;
  }
  sink += encoder.end().length;
}

function timed(round: () => void): number {
  const started = Bun.nanoseconds();
  round();
  return (Bun.nanoseconds() - started) / ITERATIONS;
}

for (let warm = 0; warm < 5; warm++) {
  responsesRound();
  chatRound();
  otherRound();
}
const responses: number[] = [];
const chat: number[] = [];
const other: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  responses.push(timed(responsesRound));
  chat.push(timed(chatRound));
  if (OtherEncoder !== undefined) other.push(timed(otherRound));
}
const quantile = (values: number[], at: number): number => [...values].sort((a, b) => a - b)[Math.floor(values.length * at)] as number;
const median = (values: number[]): number => quantile(values, 0.5);
const summary = (values: number[]): string =>
  `median ${median(values).toFixed(0)} ns, p25 ${quantile(values, 0.25).toFixed(0)} ns, fastest ${Math.min(...values).toFixed(0)} ns per text delta`;
const ratios = responses.map((value, index) => value / (chat[index] as number));
console.log(`responses path: ${summary(responses)}`);
console.log(`chat path:      ${summary(chat)}`);
if (other.length > 0) console.log(`responses path (${compareCheckout}): ${summary(other)}`);
console.log(`ratio responses / chat (same round): median ${median(ratios).toFixed(2)}, p25 ${quantile(ratios, 0.25).toFixed(2)} (sink ${sink > 0})`);
