// What the gateway's thread and the tokenizer thread say to each other (tokenizer.ts, tokenizer-worker.ts).

export interface TokenizerAsk {
  id: number;
  encoding: 'o200k_base' | 'cl100k_base';
  texts: readonly string[];
}

export type TokenizerAnswer = { id: number; counts: number[] } | { id: number; error: string };
