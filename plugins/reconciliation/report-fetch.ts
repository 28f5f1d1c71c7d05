// What the provider reports, normalised: cost and tokens per UTC day and model, tokens per day and
// provider API key, and the provider's list of API keys with the hint it shows of each. The two
// providers' readers (openai-report.ts, anthropic-report.ts) fill it; this file holds the shared
// HTTP reading, paging and failure vocabulary. The admin key never reaches an error text.

import type { Services } from '../../core/spec/services.ts';

export interface TokenCounts {
  /** The whole prompt, cached reads and cache writes included (Keyway's convention). */
  input: number;
  output: number;
  cachedInput: number;
  cacheWrite: number;
}

export interface ProviderModelDay {
  day: string;
  model: string;
  costUsd: number;
  tokens: TokenCounts | null;
  requests: number | null;
}

export interface ProviderKeyDay {
  day: string;
  apiKeyId: string;
  tokens: TokenCounts;
}

export interface ProviderApiKey {
  id: string;
  /** As the provider shows it: `sk-abc...def`, `sk-ant-api03-R2D...igAA`. */
  hint: string;
}

export interface ProviderReport {
  models: ProviderModelDay[];
  keys: ProviderKeyDay[];
  /** Undefined when the key list could not be read (the per-key comparison is then skipped). */
  apiKeys: ProviderApiKey[] | undefined;
}

export type ReportErrorCode =
  | 'admin_key_missing'
  | 'admin_key_rejected'
  | 'provider_rate_limited'
  | 'provider_error'
  | 'provider_unreachable'
  | 'provider_bad_answer';

export class ReportError extends Error {
  constructor(
    readonly code: ReportErrorCode,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

const TIMEOUT_MS = 30_000;
/** A quarter is four pages of 31 days; this bounds a misbehaving cursor. */
const MAX_PAGES = 50;

function providerMessage(body: unknown): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const error = (body as { error?: unknown }).error;
  if (error !== null && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string')
    return (error as { message: string }).message;
  return undefined;
}

/**
 * Scrubs the admin key from failure text by value as well as by shape: a key being checked before it
 * is stored is not yet among the secrets the core redacts by value.
 */
function scrubber(services: Services, headers: Record<string, string>): (text: string) => string {
  const secrets = [headers.authorization?.replace(/^Bearer /, ''), headers['x-api-key']].filter(
    (value): value is string => value !== undefined && value.length >= 8,
  );
  return (text) => secrets.reduce((scrubbed, secret) => scrubbed.split(secret).join('[REDACTED]'), services.errors.redact(text));
}

/** One GET to a provider's admin API, its failures in the vocabulary above. */
export async function getJson(services: Services, label: string, url: string, headers: Record<string, string>): Promise<Record<string, unknown>> {
  const scrub = scrubber(services, headers);
  let response: Response;
  try {
    response = await services.fetch(url, { method: 'GET', headers: { accept: 'application/json', ...headers }, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ReportError('provider_unreachable', scrub(`${label} could not be reached: ${reason}`).slice(0, 300));
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (response.status === 401 || response.status === 403) {
    // The provider's words are left out: some echo part of the key they refused.
    throw new ReportError(
      'admin_key_rejected',
      `${label} refused the admin key (HTTP ${response.status}); it must be an organisation admin key with read access to usage and costs.`,
      response.status,
    );
  }
  if (!response.ok) {
    const detail = providerMessage(body);
    const code = response.status === 429 ? 'provider_rate_limited' : 'provider_error';
    throw new ReportError(code, scrub(`${label} answered HTTP ${response.status}${detail === undefined ? '' : `: ${detail}`}`).slice(0, 300), response.status);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new ReportError('provider_bad_answer', `${label} answered something that is not a JSON object.`);
  return body as Record<string, unknown>;
}

/** Follows `has_more`/`next_page` (the usage and cost reports' cursor) and returns every page's `data`. */
export async function getPages(services: Services, label: string, url: URL, headers: Record<string, string>): Promise<unknown[]> {
  const items: unknown[] = [];
  for (let pageCount = 0; pageCount < MAX_PAGES; pageCount++) {
    const body = await getJson(services, label, url.toString(), headers);
    if (!Array.isArray(body.data)) throw new ReportError('provider_bad_answer', `${label} answered without a data list.`);
    items.push(...body.data);
    if (body.has_more !== true || typeof body.next_page !== 'string' || body.next_page === '') return items;
    url.searchParams.set('page', body.next_page);
  }
  throw new ReportError('provider_bad_answer', `${label} kept answering has_more after ${MAX_PAGES} pages.`);
}

/** Follows `has_more`/`last_id` (the key lists' cursor) through `cursorParameter`. */
export async function getList(services: Services, label: string, url: URL, headers: Record<string, string>, cursorParameter: string): Promise<unknown[]> {
  const items: unknown[] = [];
  for (let pageCount = 0; pageCount < MAX_PAGES; pageCount++) {
    const body = await getJson(services, label, url.toString(), headers);
    if (!Array.isArray(body.data)) throw new ReportError('provider_bad_answer', `${label} answered without a data list.`);
    items.push(...body.data);
    if (body.has_more !== true || typeof body.last_id !== 'string') return items;
    url.searchParams.set(cursorParameter, body.last_id);
  }
  return items;
}

export function numberOf(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value)
    ? value
    : typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))
      ? Number(value)
      : 0;
}

export function recordOf(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

export function addTokens(into: TokenCounts, more: TokenCounts): void {
  into.input += more.input;
  into.output += more.output;
  into.cachedInput += more.cachedInput;
  into.cacheWrite += more.cacheWrite;
}

export function emptyTokens(): TokenCounts {
  return { input: 0, output: 0, cachedInput: 0, cacheWrite: 0 };
}

/** Accumulates report lines into (day, model) and (day, key) totals. */
export class ReportBuilder {
  private readonly models = new Map<string, ProviderModelDay>();
  private readonly keys = new Map<string, ProviderKeyDay>();

  private modelDay(day: string, model: string): ProviderModelDay {
    const name = `${day}\u0000${model}`;
    let entry = this.models.get(name);
    if (entry === undefined) this.models.set(name, (entry = { day, model, costUsd: 0, tokens: null, requests: null }));
    return entry;
  }

  addCost(day: string, model: string, usd: number): void {
    this.modelDay(day, model).costUsd += usd;
  }

  addUsage(day: string, model: string, apiKeyId: string | undefined, tokens: TokenCounts, requests: number | null): void {
    const entry = this.modelDay(day, model);
    entry.tokens ??= emptyTokens();
    addTokens(entry.tokens, tokens);
    if (requests !== null) entry.requests = (entry.requests ?? 0) + requests;
    if (apiKeyId === undefined) return;
    const name = `${day}\u0000${apiKeyId}`;
    let keyEntry = this.keys.get(name);
    if (keyEntry === undefined) this.keys.set(name, (keyEntry = { day, apiKeyId, tokens: emptyTokens() }));
    addTokens(keyEntry.tokens, tokens);
  }

  build(apiKeys: ProviderApiKey[] | undefined): ProviderReport {
    return { models: [...this.models.values()], keys: [...this.keys.values()], apiKeys };
  }
}

/** `YYYY-MM-DD` of an instant in UTC. */
export function dayOf(instantMs: number): string {
  return new Date(instantMs).toISOString().slice(0, 10);
}
