// OpenAI: Chat Completions, embeddings and models, through the OpenAI-compatible base.

import { compatiblePlugin, OPENAI_COMPATIBLE_CATALOG_ALIASES } from '../openai-compatible/index.ts';
import { OPENAI_MODEL_CLASSES } from './model-classes.ts';

export const openAIProviderPlugin = compatiblePlugin({
  name: 'openai',
  defaultBaseUrl: 'https://api.openai.com/v1',
  modelPatterns: [/^gpt-/, /^o\d/, /^chatgpt-/, /^text-embedding-/, /^davinci/, /^babbage/],
  catalogAliases: OPENAI_COMPATIBLE_CATALOG_ALIASES.openai,
  modelClasses: OPENAI_MODEL_CLASSES,
  description: 'OpenAI Chat Completions, embeddings and models',
});
