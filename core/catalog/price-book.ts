// The effective price table: the embedded LiteLLM table, the operator's KEYWAY_PRICES_FILE merged over
// it, and the operator's per-model overrides (a platform setting) over both. The gateway reads prices
// from one ModelCatalog object whose contents are swapped whole when any layer changes: the request
// path never waits for a rebuild and never sees half a table.

import { ModelCatalog, shippedEntries, toModelInfo, type CatalogAliases, type CatalogEntry, type ModelInfo, type PriceFields } from './catalog.ts';
import { readPriceFile } from './price-file.ts';

/** The platform setting the overrides are stored under. */
export const PRICE_OVERRIDES_SETTING = 'model_prices';

/** An operator's price for one model: LiteLLM field names, merged over the table's entry for it. */
export interface PriceOverride extends PriceFields {
  provider: string;
  model: string;
  updated_at?: string;
}

export interface PriceFileStatus {
  path: string | undefined;
  /** When the file in use was read. */
  loadedAt: string | undefined;
  /** Entries the file holds. */
  models: number;
  /** Why the last attempt to read it failed (the table from before stays in use). */
  error: string | undefined;
}

/** Fields whose value is a table of fees by name: an override merges into them name by name. */
const FEE_TABLES = ['search_context_cost_per_query', 'tool_call_costs'] as const;

function isTable(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * A price file's entry, or an override, over the table's entry: what it names wins, the rest comes
 * from the table, inside the fee tables too. Merged whole, a search fee set for one context size dropped the others, and a table
 * of one size reads as a per-search fee, which Sonar never reports: every Sonar request went without
 * its fee (QA20).
 */
function mergedEntry(base: Record<string, unknown>, fields: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base, ...fields };
  for (const name of FEE_TABLES) {
    const own = fields[name];
    const table = base[name];
    if (isTable(own) && isTable(table)) merged[name] = { ...table, ...own };
  }
  return merged;
}

export class PriceBook {
  /** The live catalog every part of the gateway reads. */
  readonly catalog: ModelCatalog;
  private fileEntries: Record<string, CatalogEntry> = {};
  private overrides: readonly PriceOverride[] = [];
  private overridesText = '[]';
  /** The table under the overrides (embedded and file), as last built. */
  private base: ModelCatalog | undefined;
  readonly file: PriceFileStatus;

  constructor(
    private readonly aliases: ReadonlyMap<string, CatalogAliases>,
    catalog: ModelCatalog,
    filePath: string | undefined,
  ) {
    this.catalog = catalog;
    this.file = { path: filePath, loadedAt: undefined, models: 0, error: undefined };
  }

  /**
   * Reads KEYWAY_PRICES_FILE again and rebuilds the table. A file that cannot be used throws a
   * PriceFileError and changes nothing: the table in use stays.
   */
  reloadFile(): PriceFileStatus {
    const path = this.file.path;
    if (path === undefined) return this.file;
    try {
      const served = new Set([...this.aliases.values()].flatMap((alias) => alias.providers));
      this.fileEntries = readPriceFile(path, (provider) => served.has(provider));
    } catch (error) {
      this.file.error = (error as Error).message;
      throw error;
    }
    Object.assign(this.file, { loadedAt: new Date().toISOString(), models: Object.keys(this.fileEntries).length, error: undefined });
    this.rebuild();
    return this.file;
  }

  /** The overrides as stored; rebuilds only when they changed (every snapshot refresh calls this). */
  applyOverrides(stored: unknown): void {
    const list = Array.isArray(stored) ? (stored as PriceOverride[]) : [];
    const text = JSON.stringify(list);
    if (text === this.overridesText) return;
    this.overrides = list.filter(
      (entry) => entry !== null && typeof entry === 'object' && typeof entry.provider === 'string' && typeof entry.model === 'string',
    );
    this.overridesText = text;
    this.rebuild();
  }

  /** The hosted-tool fee names the provider bills calls under (CatalogAliases.toolCallCosts): none for most. */
  toolCallFeeNames(provider: string): readonly string[] {
    return Object.keys(this.aliases.get(provider)?.toolCallCosts ?? {});
  }

  currentOverrides(): readonly PriceOverride[] {
    return this.overrides;
  }

  /** The model as the embedded table and the file price it, overrides aside. */
  tableEntry(provider: string, model: string): ModelInfo | undefined {
    this.base ??= this.baseCatalog();
    return this.base.get(provider, model);
  }

  /** The table without overrides: what an override for this model is merged over. */
  private baseCatalog(): ModelCatalog {
    const merged: Record<string, CatalogEntry> = { ...shippedEntries() };
    for (const [name, entry] of Object.entries(this.fileEntries)) merged[name] = mergedEntry(merged[name] ?? {}, entry) as CatalogEntry;
    return new ModelCatalog(merged, this.aliases, (name) => (name in this.fileEntries ? 'file' : 'shipped'));
  }

  private rebuild(): void {
    this.base = this.baseCatalog();
    const next = this.baseCatalog();
    for (const override of this.overrides) {
      const { provider, model, updated_at: _updatedAt, ...fields } = override;
      const base: Record<string, unknown> = { ...next.get(provider, model)?.entry };
      // An operator's rate is the rate: the table's long-prompt tiers and processing-tier rates
      // (`*_priority`, `*_flex`) no longer apply once it is set.
      if (fields.input_cost_per_token !== undefined || fields.output_cost_per_token !== undefined) {
        for (const key of Object.keys(base)) if (/_above_\d+k_tokens$|_(?:priority|flex)$/.test(key)) delete base[key];
      }
      next.put(toModelInfo(model, mergedEntry(base, fields), provider, [], 'override', this.aliases.get(provider)?.toolCallCosts));
    }
    this.catalog.replaceWith(next);
  }
}
