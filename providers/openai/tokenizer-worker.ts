// The thread OpenAI's tokenizers run on (providers/openai/tokenizer.ts). Loading an encoding parses
// megabytes of tables (o200k_base: ~0.3 s); here that holds no request of the gateway's thread. Each
// message asks for one encoding's counts of some texts and gets them back in order, or the error.

import type { TokenizerAnswer, TokenizerAsk } from './tokenizer-protocol.ts';

declare const self: Worker;

type Count = (text: string) => number;

const loaded = new Map<TokenizerAsk['encoding'], Promise<Count>>();

async function loadEncoding(encoding: TokenizerAsk['encoding']): Promise<Count> {
  const module = encoding === 'o200k_base' ? await import('gpt-tokenizer/encoding/o200k_base') : await import('gpt-tokenizer/encoding/cl100k_base');
  // Special-token text (`<|endoftext|>`) in a prompt is ordinary text to OpenAI's API.
  const asText = { disallowedSpecial: new Set<string>() };
  return (text) => module.countTokens(text, asText);
}

self.onmessage = async (event: MessageEvent<TokenizerAsk>) => {
  const { id, encoding, texts } = event.data;
  try {
    let loading = loaded.get(encoding);
    if (loading === undefined) {
      loading = loadEncoding(encoding);
      loaded.set(encoding, loading);
    }
    const count = await loading;
    self.postMessage({ id, counts: texts.map(count) } satisfies TokenizerAnswer);
  } catch (error) {
    loaded.delete(encoding);
    self.postMessage({ id, error: error instanceof Error ? error.message : String(error) } satisfies TokenizerAnswer);
  }
};
