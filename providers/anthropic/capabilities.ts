// What a Claude model generation supports, read from its name.

import { shippedCatalog, type ModelCatalog } from '../../core/catalog/catalog.ts';

export interface ClaudeCapabilities {
  /** Opus 4.7+, the 5 family, Fable and Mythos answer 400 to temperature/top_p/top_k. */
  samplingRemoved: boolean;
  /** 4.6+ take `thinking:{type:"adaptive"}` plus `output_config.effort`; newer ones reject `budget_tokens`. */
  adaptiveThinking: boolean;
}

const MODERN_NAME = /^claude-(opus|sonnet|haiku|fable|mythos)(?:-(\d+)(?:-(\d{1,2}))?)?(?=-|$)/;
const LEGACY_NAME = /^claude-(\d+)(?:-(\d{1,2}))?-(opus|sonnet|haiku)/;

/**
 * Extended thinking arrived with Claude 3.7 Sonnet; Claude 3 and 3.5 answer 400 to a `thinking` block.
 * Names this cannot read keep the long-standing behaviour (thinking allowed).
 */
export function claudeSupportsThinking(model: string): boolean {
  const legacy = MODERN_NAME.test(model) ? undefined : LEGACY_NAME.exec(model);
  if (!legacy) return true;
  return Number(legacy[1]) + Number(legacy[2] ?? 0) / 10 >= 3.7;
}

/** Reads the generation from the model name; names it cannot read keep the long-standing behaviour. */
export function claudeCapabilities(model: string): ClaudeCapabilities {
  const modern = MODERN_NAME.exec(model);
  const legacy = modern ? undefined : LEGACY_NAME.exec(model);
  const family = modern?.[1] ?? legacy?.[3];
  const major = Number(modern?.[2] ?? legacy?.[1] ?? 0);
  const minor = Number(modern?.[3] ?? legacy?.[2] ?? 0);
  const version = major + minor / 10;
  const newFamily = family === 'fable' || family === 'mythos';
  return {
    samplingRemoved: newFamily || major >= 5 || (family === 'opus' && version >= 4.7),
    adaptiveThinking: newFamily || version >= 4.6,
  };
}

// ---------------------------------------------------------------------------------------------
// Messages

/** How Anthropic appears in the shipped price catalog. */
export const ANTHROPIC_CATALOG_ALIASES = { providers: ['anthropic'] } as const;

let catalog: ModelCatalog | undefined;

/** The model's output-token limit from the shipped catalog, when it lists the model. */
export function catalogMaxOutputTokens(model: string): number | undefined {
  catalog ??= shippedCatalog(new Map([['anthropic', ANTHROPIC_CATALOG_ALIASES]]));
  return catalog.get('anthropic', model)?.maxOutputTokens;
}
