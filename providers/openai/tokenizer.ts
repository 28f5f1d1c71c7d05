// OpenAI's tokenizers for budgets and approvals (ProviderAdapter.loadTokenizer): a model's prompt text
// counted exactly as OpenAI bills it, where the byte bound alone would refuse a request or send it
// for approval. gpt-tokenizer ports tiktoken's two encodings of OpenAI's chat models: o200k_base
// (GPT-4o, GPT-4.1, GPT-4.5, GPT-5, the o-series, gpt-oss) and cl100k_base (GPT-4, GPT-3.5).
//
// They run on a thread of their own (tokenizer-worker.ts), started when a prompt is first counted:
// an encoding's tables are megabytes and take ~0.3 s to load, which the gateway's thread never waits
// for, and most gateways never need them. A model not named here (a future family, or another
// server's model behind `settings.base_url`) gets no tokenizer, so its budgets keep the byte bound:
// a wrong encoding could count fewer tokens than the provider bills.

import type { TextTokenCount } from '../../core/spec/plugin.ts';
import type { TokenizerAnswer, TokenizerAsk } from './tokenizer-protocol.ts';

/** The worker's module; in the single binary it is its own entry point (scripts/build-binary.ts), at the same relative path. */
const WORKER_URL = new URL('./tokenizer-worker.ts', import.meta.url).href;
/** A count not answered in this long fails: the request is then judged on the byte bound. */
const ANSWER_TIMEOUT_MS = 10_000;

/** The encoding of a model OpenAI serves, by name (a dated snapshot like its family), or undefined. */
export function encodingOfModel(model: string): TokenizerAsk['encoding'] | undefined {
  const name = model.toLowerCase();
  if (/^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|gpt-oss)(?![a-z0-9])/.test(name)) return 'o200k_base';
  if (/^(gpt-4|gpt-3\.5-turbo|gpt-35-turbo)(?![a-z0-9.])/.test(name)) return 'cl100k_base';
  return undefined;
}

interface Waiting {
  resolve: (counts: number[]) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

let worker: Worker | undefined;
let nextId = 1;
const waiting = new Map<number, Waiting>();

function failAll(error: Error): void {
  for (const [id, entry] of waiting) {
    clearTimeout(entry.timer);
    waiting.delete(id);
    entry.reject(error);
  }
}

function tokenizerThread(): Worker {
  if (worker !== undefined) return worker;
  const started = new Worker(WORKER_URL);
  // Counting never keeps a stopping gateway alive.
  started.unref();
  started.onmessage = (event: MessageEvent<TokenizerAnswer>) => {
    const answer = event.data;
    const entry = waiting.get(answer.id);
    if (entry === undefined) return;
    waiting.delete(answer.id);
    clearTimeout(entry.timer);
    if ('error' in answer) entry.reject(new Error(`the tokenizer failed: ${answer.error}`));
    else entry.resolve(answer.counts);
  };
  started.onerror = (event) => {
    // A broken thread is replaced on the next count.
    if (worker === started) worker = undefined;
    failAll(new Error(`the tokenizer thread failed: ${event.message}`));
  };
  worker = started;
  return started;
}

function countOnThread(encoding: TokenizerAsk['encoding'], texts: readonly string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error(`the tokenizer did not answer within ${ANSWER_TIMEOUT_MS} ms`));
    }, ANSWER_TIMEOUT_MS);
    timer.unref?.();
    waiting.set(id, { resolve, reject, timer });
    tokenizerThread().postMessage({ id, encoding, texts } satisfies TokenizerAsk);
  });
}

/** The tokenizer of an OpenAI model (ProviderAdapter.loadTokenizer), or undefined for a model not named above. */
export async function loadOpenAITokenizer(model: string): Promise<TextTokenCount | undefined> {
  const encoding = encodingOfModel(model);
  if (encoding === undefined) return undefined;
  return (texts) => countOnThread(encoding, texts);
}
