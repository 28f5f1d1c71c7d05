// Label values come only from known sets: the error table, the failure reasons, the loaded providers
// and the models the catalog knows. Nothing a client types can become a label value (a canary key
// sent as a model name never reaches /metrics), so the number of series stays bounded.

import { ERROR_TABLE } from '../../core/errors.ts';
import { FAILURE_REASONS } from '../../core/spec/vocabulary.ts';

/** Errors Keyway answers that are not in the table (a stream the client closed). */
const EXTRA_CODES: ReadonlySet<string> = new Set(['client_closed']);

/** The failure reasons an upstream attempt can record (core/lifecycle/attempts.ts). */
const KNOWN_REASONS: ReadonlySet<string> = new Set(FAILURE_REASONS);

/** Refusals decided by a policy or a permission, not by a provider or by bad input. */
export const POLICY_CODES: ReadonlySet<string> = new Set([
  'budget_exceeded',
  'rate_limited',
  'permission_denied',
  'byok_access_denied',
  'model_not_allowed',
  'provider_not_allowed',
  'project_tag_required',
  'project_not_allowed',
  'ip_not_allowed',
  'upstream_not_allowed',
  'approval_required',
  'tool_not_allowed',
  'model_unpriced',
  'sensitive_content_blocked',
]);

/** The label for anything outside a known set. */
export const OTHER = '_other';

export function errorCodeLabel(code: string | undefined): string {
  if (code === undefined) return '';
  return Object.hasOwn(ERROR_TABLE, code) || EXTRA_CODES.has(code) ? code : OTHER;
}

/** An attempt's reason is a failure reason or, for Keyway's own failures, an error code. */
export function reasonLabel(reason: string): string {
  return KNOWN_REASONS.has(reason) || Object.hasOwn(ERROR_TABLE, reason) ? reason : OTHER;
}

export const STATUS_CLASSES: readonly string[] = ['', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** 0 for a status outside 100–599 (rendered as `_other`), else its hundreds digit. */
export function statusClassIndex(status: number): number {
  return status >= 100 && status < 600 ? Math.floor(status / 100) : 0;
}

/**
 * gen_ai.operation.name: the conventions' well-known values where one applies (`/v1/messages` is a
 * chat, and so is `/v1/responses`), else Keyway's endpoint name.
 */
export function operationName(endpoint: string): string {
  if (endpoint === 'chat' || endpoint === 'messages' || endpoint === 'responses') return 'chat';
  return endpoint;
}

/**
 * gen_ai.provider.name: the conventions' well-known value where Keyway's provider name differs from
 * it; every other provider keeps Keyway's name (X-Provider-Used).
 */
const SEMCONV_PROVIDER_NAMES: Readonly<Record<string, string>> = { google: 'gcp.gemini', mistral: 'mistral_ai' };

export function providerName(provider: string): string {
  return SEMCONV_PROVIDER_NAMES[provider] ?? provider;
}

/** Prometheus label-value escaping: backslash, double quote and newline. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (character) => (character === '\n' ? '\\n' : `\\${character}`));
}
