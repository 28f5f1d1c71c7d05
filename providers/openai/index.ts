// OpenAI: Chat Completions, embeddings and models, through the OpenAI-compatible base, and its own
// Responses API for the `responses` dialect (hosted tools, encrypted reasoning).

import type { CatalogAliases } from '../../core/catalog/catalog.ts';
import { compatiblePlugin } from '../openai-compatible/index.ts';
import { OPENAI_TOOL_CALL_COSTS } from './hosted-tools.ts';
import { OPENAI_MODEL_CLASSES } from './model-classes.ts';
import { createOpenAIResponsesApi } from './responses.ts';
import { openAITokenizerLoader } from './tokenizer.ts';

/** OpenAI in the shipped price catalog, with the per-call fees of its hosted tools (not in LiteLLM's table). */
export const OPENAI_CATALOG_ALIASES: CatalogAliases = { providers: ['openai'], toolCallCosts: OPENAI_TOOL_CALL_COSTS };

export const openAIProviderPlugin = compatiblePlugin({
  name: 'openai',
  defaultBaseUrl: 'https://api.openai.com/v1',
  // OpenAI's own embedding names (3-small, 3-large, ada-002): `text-embedding-00N` is Google's.
  modelPatterns: [/^gpt-/, /^o\d/, /^chatgpt-/, /^text-embedding-(?:3|ada)-/, /^davinci/, /^babbage/],
  // A fine-tune is `ft:<base model>:<organisation>:<suffix>:<id>`: OpenAI's when the base model is.
  modelNameForms: { derived: [/^ft:([^:]+):/] },
  catalogAliases: OPENAI_CATALOG_ALIASES,
  modelClasses: OPENAI_MODEL_CLASSES,
  description: 'OpenAI Chat Completions, embeddings and models; its own Responses API for /v1/responses',
  native: (access) => ({ responses: createOpenAIResponsesApi(access) }),
  tokenizerLoader: openAITokenizerLoader,
});
