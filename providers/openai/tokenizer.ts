// OpenAI's tokenizers for budgets and approvals (ProviderAdapter.loadTokenizer): a model's prompt text
// counted exactly as OpenAI bills it, where the byte bound alone would refuse a request or send it
// for approval. gpt-tokenizer ports tiktoken's two encodings of OpenAI's chat models: o200k_base
// (GPT-4o, GPT-4.1, GPT-4.5, GPT-5, the o-series, gpt-oss) and cl100k_base (GPT-4, GPT-3.5). Each is
// loaded when a model of it is first counted: their tables are megabytes, and most gateways never need them.
//
// A model not named here (a future family, or another server's model behind `settings.base_url`) gets
// no tokenizer, so its budgets keep the byte bound: a wrong encoding could count fewer tokens than
// the provider bills. Special-token text (`<|endoftext|>`) in a prompt is ordinary text to the API,
// and is counted as such.

import type { TextTokenCount } from '../../core/spec/plugin.ts';

/** The encoding of a model OpenAI serves, by name (a dated snapshot like its family), or undefined. */
export function encodingOfModel(model: string): 'o200k_base' | 'cl100k_base' | undefined {
  const name = model.toLowerCase();
  if (/^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|gpt-oss)(?![a-z0-9])/.test(name)) return 'o200k_base';
  if (/^(gpt-4|gpt-3\.5-turbo|gpt-35-turbo)(?![a-z0-9.])/.test(name)) return 'cl100k_base';
  return undefined;
}

type Encoding = NonNullable<ReturnType<typeof encodingOfModel>>;

/** Each encoding is loaded once, when a model of it first needs counting. */
const loaded = new Map<Encoding, Promise<TextTokenCount>>();

async function loadEncoding(encoding: Encoding): Promise<TextTokenCount> {
  const module = encoding === 'o200k_base' ? await import('gpt-tokenizer/encoding/o200k_base') : await import('gpt-tokenizer/encoding/cl100k_base');
  const asText = { disallowedSpecial: new Set<string>() };
  return (text) => module.countTokens(text, asText);
}

/** The tokenizer of an OpenAI model (ProviderAdapter.loadTokenizer), or undefined for a model not named above. */
export function loadOpenAITokenizer(model: string): Promise<TextTokenCount | undefined> {
  const encoding = encodingOfModel(model);
  if (encoding === undefined) return Promise.resolve(undefined);
  let loading = loaded.get(encoding);
  if (loading === undefined) {
    loading = loadEncoding(encoding);
    // A failed load is tried again next time rather than remembered.
    loading.catch(() => loaded.delete(encoding));
    loaded.set(encoding, loading);
  }
  return loading;
}
