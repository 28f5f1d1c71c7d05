// The shipped catalog as the built-in providers name themselves in it (their manifests' aliases).

import { shippedCatalog, type CatalogAliases, type ModelCatalog } from '../../core/catalog/catalog.ts';
import { ANTHROPIC_CATALOG_ALIASES } from '../../providers/anthropic/index.ts';
import { COHERE_CATALOG_ALIASES } from '../../providers/cohere/index.ts';
import { GOOGLE_CATALOG_ALIASES } from '../../providers/google/index.ts';
import { PERPLEXITY_CATALOG_ALIASES } from '../../providers/perplexity/index.ts';
import { OPENAI_CATALOG_ALIASES } from '../../providers/openai/index.ts';
import { OPENAI_COMPATIBLE_CATALOG_ALIASES } from '../../providers/openai-compatible/index.ts';

export const BUILTIN_CATALOG_ALIASES: ReadonlyMap<string, CatalogAliases> = new Map<string, CatalogAliases>([
  ['anthropic', ANTHROPIC_CATALOG_ALIASES],
  ['cohere', COHERE_CATALOG_ALIASES],
  ['google', GOOGLE_CATALOG_ALIASES],
  ['perplexity', PERPLEXITY_CATALOG_ALIASES],
  ['openai', OPENAI_CATALOG_ALIASES],
  ...Object.entries(OPENAI_COMPATIBLE_CATALOG_ALIASES),
]);

export function builtinCatalog(): ModelCatalog {
  return shippedCatalog(BUILTIN_CATALOG_ALIASES);
}
