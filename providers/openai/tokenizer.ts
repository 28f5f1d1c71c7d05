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

import type { Logger } from '../../core/logger.ts';
import type { TextTokenCount } from '../../core/spec/plugin.ts';
import type { TokenizerAnswer, TokenizerAsk } from './tokenizer-protocol.ts';

/** The thread's module by its path from the repository root: scripts/build-binary.ts embeds it under this path. */
export const TOKENIZER_WORKER_ENTRY_POINT = 'providers/openai/tokenizer-worker.ts';

/**
 * What the thread is started from. From source, that file in the checkout (this file sits two folders
 * below its root). In the single binary `import.meta.url` is no guide: bun fixes it at build time to
 * the build machine's path, where a target machine has no file (or another checkout's). There the
 * thread's module is the entry point embedded under its path from the build's `--root`, which a
 * relative specifier names (docs/binary.md).
 */
function tokenizerModule(): string {
  return Bun.isStandaloneExecutable ? `./${TOKENIZER_WORKER_ENTRY_POINT}` : new URL(`../../${TOKENIZER_WORKER_ENTRY_POINT}`, import.meta.url).href;
}

const WORKER_MODULE = tokenizerModule();
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

function tokenizerThread(logger: Logger | undefined): Worker {
  if (worker !== undefined) return worker;
  const started = new Worker(WORKER_MODULE);
  // Counting never keeps a stopping gateway alive.
  started.unref();
  let answered = false;
  started.onmessage = (event: MessageEvent<TokenizerAnswer>) => {
    // The first answer, not Bun's "open" event (sent even when the module is missing), shows the thread runs.
    if (!answered) {
      answered = true;
      logger?.info({ thread: 'openai-tokenizer' }, 'tokenizer thread started');
    }
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

function countOnThread(encoding: TokenizerAsk['encoding'], texts: readonly string[], logger: Logger | undefined): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error(`the tokenizer did not answer within ${ANSWER_TIMEOUT_MS} ms`));
    }, ANSWER_TIMEOUT_MS);
    timer.unref?.();
    waiting.set(id, { resolve, reject, timer });
    tokenizerThread(logger).postMessage({ id, encoding, texts } satisfies TokenizerAsk);
  });
}

/**
 * ProviderAdapter.loadTokenizer for OpenAI: a model's tokenizer, or undefined for a model not named
 * above. `logger` (the provider plugin's) hears that the thread started, once per thread.
 */
export function openAITokenizerLoader(logger?: Logger): (model: string) => Promise<TextTokenCount | undefined> {
  return async (model) => {
    const encoding = encodingOfModel(model);
    if (encoding === undefined) return undefined;
    return (texts) => countOnThread(encoding, texts, logger);
  };
}
