// Per-chunk cost of a text delta on the Responses stream path beside the chat path's, measured
// interleaved (A, B, A, B…) in short rounds, reporting the median, p25 and fastest round of each: on
// a shared, busy machine mitata's sequential runs drift more than the difference being measured.
// Each round is one stream of ITERATIONS deltas through the whole per-part path of streamAnswer
// (observe, encode to bytes). Its closing events (`end()`: for Responses the whole text four times
// over, in output_text.done, content_part.done, output_item.done and response.completed) are a cost
// per stream, not per chunk: timed apart and printed as ns per stream and per delta of the stream.
// Run: bun bench/responses-chunk-ab.ts [rounds] [iterations per round] [delta text, default ' the parser']
// KEYWAY_COMPARE_CHECKOUT=/path/to/other/checkout adds that checkout's Responses encoder (before/after).

import { StreamObserver } from '../core/accounting/stream-observer.ts';
import { OpenAIStreamEncoder } from '../core/wire/openai-encoder.ts';
import type { StreamEncoder } from '../core/spec/dialect.ts';
import type { StreamPart } from '../core/spec/vocabulary.ts';
import { echoOf, ResponsesStreamEncoder } from '../plugins/responses/index.ts';

const ROUNDS = Number(process.argv[2] ?? 40);
const ITERATIONS = Number(process.argv[3] ?? 5000);
const TEXT_DELTA: StreamPart = { type: 'text-delta', index: 0, text: process.argv[4] ?? ' the parser' };
const textEncoder = new TextEncoder();
const observer = new StreamObserver();
let sink = 0;

/** A part's bytes as streamAnswer (core/lifecycle/respond.ts) gets them: `encodeBytes` when the encoder has it. */
function frameOf(encoder: StreamEncoder, part: StreamPart): Uint8Array {
  return encoder.encodeBytes === undefined ? textEncoder.encode(encoder.encode(part)) : encoder.encodeBytes(part);
}

interface Timing {
  /** ns per delta. */
  deltas: number;
  /** ns for the closing events, once per stream. */
  end: number;
}

/** One stream: a primed encoder, ITERATIONS deltas, its end. */
function timedStream(encoder: StreamEncoder): Timing {
  const started = Bun.nanoseconds();
  for (let index = 0; index < ITERATIONS; index++) {
    observer.observe(TEXT_DELTA);
    sink += frameOf(encoder, TEXT_DELTA).length;
  }
  const ending = Bun.nanoseconds();
  sink += textEncoder.encode(encoder.end()).length;
  return { deltas: (ending - started) / ITERATIONS, end: Bun.nanoseconds() - ending };
}

function responsesStream(Encoder: typeof ResponsesStreamEncoder): Timing {
  const encoder = new Encoder({ responseId: 'resp_bench', model: 'claude-sonnet-4-5', echo: echoOf({}) });
  encoder.encode({ type: 'start', id: 'msg_1', model: 'claude-sonnet-4-5', created: 1 });
  encoder.encode(TEXT_DELTA);
  return timedStream(encoder);
}

function chatStream(): Timing {
  const encoder = new OpenAIStreamEncoder(true, 'req_bench', 'claude-sonnet-4-5');
  encoder.encode({ type: 'start', id: 'msg_1', model: 'claude-sonnet-4-5', created: 1 });
  return timedStream(encoder);
}

const compareCheckout = process.env.KEYWAY_COMPARE_CHECKOUT;
const OtherEncoder: typeof ResponsesStreamEncoder | undefined =
  compareCheckout === undefined ? undefined : (await import(`${compareCheckout}/plugins/responses/index.ts`)).ResponsesStreamEncoder;

interface Contender {
  name: string;
  run: () => Timing;
  timings: Timing[];
}

const contenders: Contender[] = [
  { name: 'responses path', run: () => responsesStream(ResponsesStreamEncoder), timings: [] },
  { name: 'chat path', run: chatStream, timings: [] },
];
if (OtherEncoder !== undefined) contenders.push({ name: `responses path (${compareCheckout})`, run: () => responsesStream(OtherEncoder), timings: [] });

for (let warm = 0; warm < 5; warm++) for (const contender of contenders) contender.run();
// The order turns every round: a round pays for the garbage the one before it left (a collection
// may fall in it), so a fixed order would charge one encoder for another's allocations.
for (let round = 0; round < ROUNDS; round++) {
  for (let turn = 0; turn < contenders.length; turn++) {
    const contender = contenders[(round + turn) % contenders.length] as Contender;
    contender.timings.push(contender.run());
  }
}

const quantile = (values: number[], at: number): number => [...values].sort((a, b) => a - b)[Math.floor(values.length * at)] as number;
const median = (values: number[]): number => quantile(values, 0.5);
for (const { name, timings } of contenders) {
  const deltas = timings.map((timing) => timing.deltas);
  const ends = timings.map((timing) => timing.end);
  console.log(
    `${name}: per delta median ${median(deltas).toFixed(0)} ns, p25 ${quantile(deltas, 0.25).toFixed(0)} ns, fastest ${Math.min(...deltas).toFixed(0)} ns; ` +
      `end() median ${(median(ends) / 1000).toFixed(1)} µs per stream (${(median(ends) / ITERATIONS).toFixed(1)} ns per delta)`,
  );
}
const [responses, chat] = contenders as [Contender, Contender];
const ratios = responses.timings.map((timing, index) => timing.deltas / (chat.timings[index] as Timing).deltas);
const withEnd = responses.timings.map(
  (timing, index) => (timing.deltas + timing.end / ITERATIONS) / ((chat.timings[index] as Timing).deltas + (chat.timings[index] as Timing).end / ITERATIONS),
);
console.log(`ratio responses / chat per delta (same round): median ${median(ratios).toFixed(2)}, p25 ${quantile(ratios, 0.25).toFixed(2)}`);
console.log(
  `ratio with end() spread over the stream's deltas: median ${median(withEnd).toFixed(2)}, p25 ${quantile(withEnd, 0.25).toFixed(2)} (sink ${sink > 0})`,
);
