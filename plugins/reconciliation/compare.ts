// Keyway's books against the provider's report: one row per UTC day and model with both sides'
// cost and tokens, the drift and a status; a total per provider; and, where the provider's key list
// lets a Keyway key be recognised, one row per day and key comparing tokens (neither provider
// reports cost per key).

import { emptyTokens, addTokens, type ProviderApiKey, type ProviderReport, type TokenCounts } from './report-fetch.ts';

export type RowStatus = 'matched' | 'drift' | 'missing_in_keyway' | 'missing_at_provider';

export interface KeywayRow {
  day: string;
  model: string;
  providerKeyId: string;
  requests: number;
  tokens: TokenCounts;
  costUsd: number;
  unpricedRequests: number;
}

export interface KeywayKey {
  id: string;
  maskedKey: string;
}

function roundUsd(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}

function percentOf(drift: number, base: number): number | null {
  return base === 0 ? null : Math.round((drift / base) * 100 * 10_000) / 10_000;
}

function tokensAnswer(tokens: TokenCounts): Record<string, number> {
  return { input_tokens: tokens.input, output_tokens: tokens.output, cached_input_tokens: tokens.cachedInput, cache_write_tokens: tokens.cacheWrite };
}

function hasTokens(tokens: TokenCounts | null): boolean {
  return tokens !== null && tokens.input + tokens.output > 0;
}

interface ModelTotals {
  requests: number;
  tokens: TokenCounts;
  costUsd: number;
  unpricedRequests: number;
}

function keywayByModel(rows: readonly KeywayRow[]): Map<string, ModelTotals & { day: string; model: string }> {
  const totals = new Map<string, ModelTotals & { day: string; model: string }>();
  for (const row of rows) {
    const name = `${row.day}\u0000${row.model}`;
    let entry = totals.get(name);
    if (entry === undefined)
      totals.set(name, (entry = { day: row.day, model: row.model, requests: 0, tokens: emptyTokens(), costUsd: 0, unpricedRequests: 0 }));
    entry.requests += row.requests;
    addTokens(entry.tokens, row.tokens);
    entry.costUsd += row.costUsd;
    entry.unpricedRequests += row.unpricedRequests;
  }
  return totals;
}

export interface ComparedRow {
  day: string;
  provider: string;
  model: string;
  status: RowStatus;
  keyway_cost_usd: number;
  provider_cost_usd: number;
  drift_usd: number;
  drift_percent: number | null;
  keyway_requests: number;
  keyway_unpriced_requests: number;
  provider_requests: number | null;
  keyway_tokens: Record<string, number>;
  provider_tokens: Record<string, number> | null;
}

/**
 * What a row may drift by and still be `matched`: at most `usd`, and at most `percent` of the provider's
 * figure. A drift of RELATIVE_FLOOR_USD or less passes the relative test whatever the share: on a row of
 * a few micro-dollars a report's rounding is a large share, and a row that small cannot hide a wrong price
 * for long (the next request's cost exceeds the floor).
 */
export interface MatchTolerance {
  usd: number;
  percent: number;
}

/** A hundredth of a cent: below it, a row's drift is judged by the absolute tolerance only. */
export const RELATIVE_FLOOR_USD = 0.00001;

/** Whether a cost drift is within both tolerances (a little slack for the binary form of the figures). */
export function withinTolerance(drift: number, providerCost: number, tolerance: MatchTolerance): boolean {
  const size = Math.abs(drift);
  const slack = 1e-12;
  if (size > tolerance.usd + slack) return false;
  return size <= RELATIVE_FLOOR_USD + slack || size <= (Math.abs(providerCost) * tolerance.percent) / 100 + slack;
}

function statusOf(
  keywayPresent: boolean,
  providerPresent: boolean,
  costs: { drift: number; provider: number },
  tolerance: MatchTolerance,
  keyway: TokenCounts,
  provider: TokenCounts | null,
): RowStatus {
  if (keywayPresent && !providerPresent) return 'missing_at_provider';
  if (providerPresent && !keywayPresent) return 'missing_in_keyway';
  const tokensAgree = provider === null || (provider.input === keyway.input && provider.output === keyway.output);
  return withinTolerance(costs.drift, costs.provider, tolerance) && tokensAgree ? 'matched' : 'drift';
}

/** One row per day and model present on either side, sorted by day then model. */
export function compareModels(provider: string, keywayRows: readonly KeywayRow[], report: ProviderReport, tolerance: MatchTolerance): ComparedRow[] {
  const keyway = keywayByModel(keywayRows);
  const reported = new Map(report.models.map((entry) => [`${entry.day}\u0000${entry.model}`, entry]));
  const names = [...new Set([...keyway.keys(), ...reported.keys()])].sort();
  const rows: ComparedRow[] = [];
  for (const name of names) {
    const ours = keyway.get(name);
    const theirs = reported.get(name);
    const keywayPresent = ours !== undefined && (ours.costUsd > 0 || hasTokens(ours.tokens));
    const providerPresent = theirs !== undefined && (theirs.costUsd > 0 || hasTokens(theirs.tokens));
    if (!keywayPresent && !providerPresent) continue;
    const keywayCost = roundUsd(ours?.costUsd ?? 0);
    const providerCost = roundUsd(theirs?.costUsd ?? 0);
    const drift = roundUsd(providerCost - keywayCost);
    const keywayTokens = ours?.tokens ?? emptyTokens();
    rows.push({
      day: (ours ?? theirs)?.day ?? '',
      provider,
      model: (ours ?? theirs)?.model ?? '',
      status: statusOf(keywayPresent, providerPresent, { drift, provider: providerCost }, tolerance, keywayTokens, theirs?.tokens ?? null),
      keyway_cost_usd: keywayCost,
      provider_cost_usd: providerCost,
      drift_usd: drift,
      drift_percent: percentOf(drift, providerCost),
      keyway_requests: ours?.requests ?? 0,
      keyway_unpriced_requests: ours?.unpricedRequests ?? 0,
      provider_requests: theirs?.requests ?? null,
      keyway_tokens: tokensAnswer(keywayTokens),
      provider_tokens: theirs?.tokens ? tokensAnswer(theirs.tokens) : null,
    });
  }
  return rows;
}

export interface ProviderTotals {
  provider: string;
  status: RowStatus;
  keyway_cost_usd: number;
  provider_cost_usd: number;
  drift_usd: number;
  drift_percent: number | null;
}

/** The provider's whole period (or day): drift of the totals, status `drift` if any row is not matched. */
export function totalsOf(provider: string, rows: readonly ComparedRow[]): ProviderTotals {
  const keywayCost = roundUsd(rows.reduce((sum, row) => sum + row.keyway_cost_usd, 0));
  const providerCost = roundUsd(rows.reduce((sum, row) => sum + row.provider_cost_usd, 0));
  const drift = roundUsd(providerCost - keywayCost);
  return {
    provider,
    status: rows.every((row) => row.status === 'matched') ? 'matched' : 'drift',
    keyway_cost_usd: keywayCost,
    provider_cost_usd: providerCost,
    drift_usd: drift,
    drift_percent: percentOf(drift, providerCost),
  };
}

// Keys.

function suffixOf(shown: string): string {
  const parts = shown.split(/\.\.\.|…/);
  return parts.length < 2 ? '' : (parts.at(-1) ?? '');
}

function prefixOf(shown: string): string {
  return shown.split(/\.\.\.|…/)[0] ?? '';
}

/**
 * Whether a provider's hint can be Keyway's masked key: the same ending (3+ characters) and the same
 * first three characters. The providers do not document how much of a key's beginning their hints
 * show (`sk-abc...` for an `sk-proj-` key), so the beginning beyond that proves nothing.
 */
function couldBe(masked: string, hint: string): boolean {
  const ours = suffixOf(masked);
  const theirs = suffixOf(hint);
  if (theirs.length < 3 || ours.length < 3 || !(ours.endsWith(theirs) || theirs.endsWith(ours))) return false;
  const family = prefixOf(masked).slice(0, 3);
  const shown = prefixOf(hint).slice(0, 3);
  return family.length < 3 || shown.length < 3 || family === shown;
}

export type KeyMatch = { kind: 'masked_key'; apiKey: ProviderApiKey } | { kind: 'ambiguous' } | { kind: 'none' } | { kind: 'not_listed' };

/** Each Keyway key's provider key, when exactly one provider key fits it and it fits no other Keyway key. */
export function matchKeys(keywayKeys: readonly KeywayKey[], apiKeys: readonly ProviderApiKey[] | undefined): Map<string, KeyMatch> {
  const matches = new Map<string, KeyMatch>();
  for (const key of keywayKeys) {
    if (apiKeys === undefined) {
      matches.set(key.id, { kind: 'not_listed' });
      continue;
    }
    const candidates = apiKeys.filter((apiKey) => couldBe(key.maskedKey, apiKey.hint));
    const only = candidates[0];
    if (candidates.length === 0 || only === undefined) matches.set(key.id, { kind: 'none' });
    else if (candidates.length > 1 || keywayKeys.filter((other) => couldBe(other.maskedKey, only.hint)).length > 1) matches.set(key.id, { kind: 'ambiguous' });
    else matches.set(key.id, { kind: 'masked_key', apiKey: only });
  }
  return matches;
}

export interface ComparedKeyRow {
  day: string;
  provider: string;
  key_id: string | null;
  masked_key: string | null;
  provider_api_key_id: string | null;
  provider_key_hint: string | null;
  match: KeyMatch['kind'];
  status: RowStatus | 'unmatched';
  keyway_cost_usd: number;
  keyway_tokens: Record<string, number> | null;
  provider_tokens: Record<string, number> | null;
}

/** Tokens per day and key: Keyway's key against the provider key it was matched to. */
export function compareKeys(provider: string, keywayRows: readonly KeywayRow[], report: ProviderReport, keywayKeys: readonly KeywayKey[]): ComparedKeyRow[] {
  const matches = matchKeys(keywayKeys, report.apiKeys);
  const masked = new Map(keywayKeys.map((key) => [key.id, key.maskedKey]));
  const ours = new Map<string, { day: string; keyId: string; tokens: TokenCounts; costUsd: number }>();
  for (const row of keywayRows) {
    const name = `${row.day}\u0000${row.providerKeyId}`;
    let entry = ours.get(name);
    if (entry === undefined) ours.set(name, (entry = { day: row.day, keyId: row.providerKeyId, tokens: emptyTokens(), costUsd: 0 }));
    addTokens(entry.tokens, row.tokens);
    entry.costUsd += row.costUsd;
  }
  const theirs = new Map(report.keys.map((entry) => [`${entry.day}\u0000${entry.apiKeyId}`, entry]));
  const claimed = new Set<string>();
  const rows: ComparedKeyRow[] = [];
  for (const entry of [...ours.values()].sort((left, right) => left.day.localeCompare(right.day) || left.keyId.localeCompare(right.keyId))) {
    const match = matches.get(entry.keyId) ?? { kind: 'none' };
    const apiKey = match.kind === 'masked_key' ? match.apiKey : undefined;
    const reported = apiKey === undefined ? undefined : theirs.get(`${entry.day}\u0000${apiKey.id}`);
    if (reported !== undefined) claimed.add(`${entry.day}\u0000${reported.apiKeyId}`);
    const status: ComparedKeyRow['status'] =
      apiKey === undefined
        ? 'unmatched'
        : reported === undefined
          ? 'missing_at_provider'
          : reported.tokens.input === entry.tokens.input && reported.tokens.output === entry.tokens.output
            ? 'matched'
            : 'drift';
    rows.push({
      day: entry.day,
      provider,
      key_id: entry.keyId === '' ? null : entry.keyId,
      masked_key: masked.get(entry.keyId) ?? null,
      provider_api_key_id: apiKey?.id ?? null,
      provider_key_hint: apiKey?.hint ?? null,
      match: match.kind,
      status,
      keyway_cost_usd: roundUsd(entry.costUsd),
      keyway_tokens: tokensAnswer(entry.tokens),
      provider_tokens: reported === undefined ? null : tokensAnswer(reported.tokens),
    });
  }
  // Provider keys with traffic that no Keyway key claimed: another application, or a key Keyway could not recognise.
  for (const [name, entry] of [...theirs].sort(([left], [right]) => left.localeCompare(right))) {
    if (claimed.has(name) || !hasTokens(entry.tokens)) continue;
    const hint = report.apiKeys?.find((apiKey) => apiKey.id === entry.apiKeyId)?.hint ?? null;
    rows.push({
      day: entry.day,
      provider,
      key_id: null,
      masked_key: null,
      provider_api_key_id: entry.apiKeyId,
      provider_key_hint: hint,
      match: 'none',
      status: 'missing_in_keyway',
      keyway_cost_usd: 0,
      keyway_tokens: null,
      provider_tokens: tokensAnswer(entry.tokens),
    });
  }
  return rows;
}
