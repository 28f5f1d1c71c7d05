// Reads a price table in LiteLLM's format (model_prices_and_context_window.json): the operator's
// KEYWAY_PRICES_FILE. Every field Keyway prices with is checked before anything is used, so a typo
// refuses the whole file with a message naming the model and the field, and the table in use stays.

import { readFileSync, statSync } from 'node:fs';
import type { CatalogEntry } from './catalog.ts';

/** LiteLLM's file is about 1.5 MB; anything past this is not a price table. */
export const MAX_PRICE_FILE_BYTES = 64 * 1024 * 1024;

export class PriceFileError extends Error {
  override name = 'PriceFileError';
}

/** The per-token and per-request rates Keyway reads: each must be a finite number, 0 or more. */
export const RATE_FIELDS = [
  'input_cost_per_token',
  'output_cost_per_token',
  'cache_read_input_token_cost',
  'cache_creation_input_token_cost',
  'cache_creation_input_token_cost_above_1hr',
  'output_cost_per_reasoning_token',
  'citation_cost_per_token',
  'input_cost_per_request',
] as const;

/** Token limits Keyway reads: whole numbers, 0 or more. */
export const LIMIT_FIELDS = ['max_input_tokens', 'max_output_tokens', 'max_tokens'] as const;

const TIER_FIELD = /^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|cache_creation_input_token_cost(_above_1hr)?)_above_\d+k_tokens$/;

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

const isRate = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value >= 0;

/** Why one entry cannot be used, or undefined when it can. */
export function entryProblem(name: string, entry: unknown): string | undefined {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return `models['${name}'] must be an object`;
  const fields = entry as Record<string, unknown>;
  if (fields.litellm_provider !== undefined && typeof fields.litellm_provider !== 'string') return `models['${name}'].litellm_provider must be a string`;
  for (const [field, value] of Object.entries(fields)) {
    const rate = (RATE_FIELDS as readonly string[]).includes(field) || TIER_FIELD.test(field);
    if (rate && !isRate(value)) return `models['${name}'].${field} must be a number of USD, 0 or more (got ${describe(value)})`;
    if ((LIMIT_FIELDS as readonly string[]).includes(field) && !(Number.isInteger(value) && (value as number) >= 0)) {
      return `models['${name}'].${field} must be a whole number of tokens (got ${describe(value)})`;
    }
  }
  for (const field of ['search_context_cost_per_query', 'tool_call_costs'] as const) {
    const fees = fields[field];
    if (fees === undefined) continue;
    if (fees === null || typeof fees !== 'object' || Array.isArray(fees)) return `models['${name}'].${field} must be an object`;
    for (const [key, value] of Object.entries(fees)) {
      if (!isRate(value)) return `models['${name}'].${field}.${key} must be a number of USD, 0 or more (got ${describe(value)})`;
    }
  }
  return undefined;
}

/**
 * The entries of a LiteLLM price table given as JSON text: the top-level object of model → entry
 * (LiteLLM's own file, whose `sample_spec` is skipped), or `{ "models": { … } }` (Keyway's embedded
 * file). With `served`, entries of providers no loaded plugin serves (LiteLLM's file lists dozens)
 * are dropped unchecked: an oddity there must not refuse the prices Keyway uses. Throws
 * PriceFileError naming the first problem.
 */
export function parsePriceTable(text: string, served?: (litellmProvider: string) => boolean): Record<string, CatalogEntry> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new PriceFileError(`it is not valid JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new PriceFileError('it must be a JSON object of model name → price entry');
  const top = parsed as Record<string, unknown>;
  const wrapped =
    top.models !== null &&
    typeof top.models === 'object' &&
    !Array.isArray(top.models) &&
    (top.models as Record<string, unknown>).litellm_provider === undefined;
  const models = (wrapped ? top.models : top) as Record<string, unknown>;
  const entries: Record<string, CatalogEntry> = {};
  for (const [name, entry] of Object.entries(models)) {
    // Top-level values that are not objects are the file's own metadata (`last_updated`), not models.
    if (name === 'sample_spec' || (!wrapped && (name.startsWith('_') || entry === null || typeof entry !== 'object' || Array.isArray(entry)))) continue;
    const provider = entry !== null && typeof entry === 'object' ? (entry as Record<string, unknown>).litellm_provider : undefined;
    if (served !== undefined && typeof provider === 'string' && !served(provider)) continue;
    const problem = entryProblem(name, entry);
    if (problem !== undefined) throw new PriceFileError(problem);
    entries[name] = entry as CatalogEntry;
  }
  if (Object.keys(entries).length === 0) throw new PriceFileError('it holds no model entries');
  return entries;
}

/** Reads and checks the file; throws PriceFileError saying what is wrong with it (never its contents beyond a field). */
export function readPriceFile(path: string, served?: (litellmProvider: string) => boolean): Record<string, CatalogEntry> {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_PRICE_FILE_BYTES) throw new PriceFileError(`it is ${size} bytes, more than the ${MAX_PRICE_FILE_BYTES} a price table may have`);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof PriceFileError) throw error;
    throw new PriceFileError(`it cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return parsePriceTable(text, served);
}
