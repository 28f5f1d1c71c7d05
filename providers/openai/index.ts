// OpenAI: Chat Completions, embeddings and models, through the OpenAI-compatible base, and its own
// Responses API for the `responses` dialect (hosted tools, encrypted reasoning).

import { compatiblePlugin, OPENAI_COMPATIBLE_CATALOG_ALIASES } from '../openai-compatible/index.ts';
import { OPENAI_MODEL_CLASSES } from './model-classes.ts';
import { createOpenAIResponsesApi } from './responses.ts';

export const openAIProviderPlugin = compatiblePlugin({
  name: 'openai',
  defaultBaseUrl: 'https://api.openai.com/v1',
  modelPatterns: [/^gpt-/, /^o\d/, /^chatgpt-/, /^text-embedding-/, /^davinci/, /^babbage/],
  catalogAliases: OPENAI_COMPATIBLE_CATALOG_ALIASES.openai,
  modelClasses: OPENAI_MODEL_CLASSES,
  description: 'OpenAI Chat Completions, embeddings and models; its own Responses API for /v1/responses',
  native: (access) => ({ responses: createOpenAIResponsesApi(access) }),
});
