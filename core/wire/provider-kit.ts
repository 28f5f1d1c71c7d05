// Building blocks every provider adapter shares: base URLs, the upstream fetch with its failure
// classification, and reading rate-limit headers. Provider folders keep only what is their own.

import { ConnectTimeoutError, ensureConnectable } from './connect-check.ts';
import { KeywayError, type ErrorCode } from '../errors.ts';
import { redactedExcerpt } from '../credentials/secret-shapes.ts';
import type { CallContext, ListedModel, ProviderCredential, UpstreamInfo } from '../spec/provider.ts';
import { urlSetting } from '../spec/settings.ts';
import type { ChatMessage, ContentPart, ErrorDescriptor, FailureReason } from '../spec/vocabulary.ts';
import { documentsAsParts } from './documents.ts';
import { searchResultsAsText } from './search-results.ts';
import { saneRetryAfter } from './retry-after.ts';
import { SseEventTooLong } from './sse.ts';
import { currentUpstreamScope, VIA_PROTOCOL, VIA_PSEUDONYM, type UpstreamScope, type UpstreamVerdict } from './upstream-policy.ts';

/**
 * A provider plugin's address as the operator set it, checked at start: its `baseUrl` setting in the
 * KEYWAY_CONFIG file, else its variable (`KEYWAY_OPENAI_BASE_URL`); undefined leaves the SDK's default.
 * Anything but an http(s) URL with a host stops the start naming where it was set (a typo used to
 * start, and then every request was refused 403 upstream_not_allowed).
 */
export function configuredBaseUrl(
  context: { config: { baseUrl?: string }; env: Readonly<Record<string, string | undefined>> },
  plugin: string,
  variable: string,
): string | undefined {
  const setting = context.config.baseUrl;
  if (setting !== undefined) return urlSetting(`plugins["${plugin}"].baseUrl`, setting);
  return urlSetting(variable, context.env[variable]);
}

/** The key's `settings.base_url` wins, then the environment's, then the provider's default. */
export function resolveBaseUrl(credential: ProviderCredential, environmentBaseUrl: string | undefined, defaultBaseUrl: string): string {
  const base = credential.settings.base_url ?? environmentBaseUrl ?? defaultBaseUrl;
  return base.endsWith('/') ? base.slice(0, -1) : base;
}

const CODE_BY_REASON: Record<FailureReason, ErrorCode> = {
  rate_limit: 'upstream_rate_limited',
  quota_exceeded: 'upstream_quota_exceeded',
  timeout: 'upstream_timeout',
  server_error: 'upstream_error',
  model_not_available: 'model_not_found',
  auth_error: 'provider_key_rejected',
  context_length_exceeded: 'context_length_exceeded',
  content_filtered: 'content_filtered',
  invalid_request: 'upstream_invalid_request',
};

export interface UpstreamFailureInput {
  provider: string;
  status: number | undefined;
  reason: FailureReason;
  /** The provider's own message; scrubbed of anything key-shaped before it reaches a client. */
  message: string;
  nativeType?: string | undefined;
  nativeCode?: string | number | undefined;
  retryAfterSeconds?: number | undefined;
  param?: string | null | undefined;
}

/** How much of a provider's own message reaches a client: enough to act on, too little to relay a page. */
export const PROVIDER_MESSAGE_LIMIT = 200;

/** The provider's message on one line, redacted and cut: only its start is redacted, so a huge echo costs little. */
function shortMessage(text: string): string {
  return redactedExcerpt(text.replace(/\s+/g, ' ').trim(), PROVIDER_MESSAGE_LIMIT);
}

/**
 * What a client learns about an error body that is not the provider's JSON error shape: its kind and
 * size, never its text (an HTML error page, or whatever an internal address answered).
 */
export function bodySummary(bodyText: string, contentType?: string | null): string {
  const bytes = Buffer.byteLength(bodyText);
  if (bytes === 0) return 'empty body';
  const type = contentType?.split(';')[0]?.trim().toLowerCase().slice(0, 60);
  if (parseJsonOrUndefined(bodyText) !== undefined) return `JSON body without an error message (${bytes} bytes)`;
  return `non-JSON body (${type ? `${type}, ` : ''}${bytes} bytes)`;
}

/** A classified upstream failure, in the error table's terms. */
export function upstreamFailure(input: UpstreamFailureInput): KeywayError {
  const code = CODE_BY_REASON[input.reason];
  const providerMessage = shortMessage(input.message);
  const detail =
    input.reason === 'auth_error'
      ? `The ${input.provider} provider key was rejected by ${input.provider} (HTTP ${input.status ?? 'n/a'}): ${providerMessage}`
      : `${input.provider} answered${input.status === undefined ? '' : ` HTTP ${input.status}`}: ${providerMessage}`;
  const extra: Record<string, unknown> = { provider: input.provider };
  if (input.status !== undefined) extra.upstream_status = input.status;
  if (input.nativeType !== undefined) extra.upstream_type = input.nativeType;
  if (input.nativeCode !== undefined && input.nativeCode !== null) extra.upstream_code = input.nativeCode;
  // A provider's wait (a header, Gemini's retryDelay) is held to a day here, before backoff or a key's cooldown reads it.
  const retryAfterSeconds = saneRetryAfter(input.retryAfterSeconds);
  return new KeywayError(code, { detail }, { reason: input.reason, retryAfterSeconds, extra, param: input.param ?? null });
}

/** The reason an HTTP status means when the provider's body does not say more. */
export function reasonFromStatus(status: number): FailureReason {
  if (status === 401 || status === 403) return 'auth_error';
  if (status === 402) return 'quota_exceeded';
  if (status === 404) return 'model_not_available';
  if (status === 408 || status === 504) return 'timeout';
  if (status === 413) return 'context_length_exceeded';
  if (status === 429) return 'rate_limit';
  if (status >= 500) return 'server_error';
  return 'invalid_request';
}

/** `Retry-After` (seconds or HTTP date) and `retry-after-ms`, in seconds, at most a day (core/wire/retry-after.ts). */
export { parseRetryAfter } from './retry-after.ts';

/** Reads the first of the named headers that holds a number. */
export function readNumberHeader(headers: Headers, names: readonly string[]): number | undefined {
  for (const name of names) {
    const value = headers.get(name);
    if (value !== null && value !== '' && Number.isFinite(Number(value))) return Number(value);
  }
  return undefined;
}

/** Turns a fetch rejection into a classified failure: our own deadline, a cancel, a broken connection, or a stream event too long to read. */
export function networkFailure(provider: string, error: unknown, signal: AbortSignal): KeywayError {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof KeywayError) return reason;
    return upstreamFailure({ provider, status: undefined, reason: 'server_error', message: 'the request was cancelled' });
  }
  if (error instanceof SseEventTooLong) return eventTooLongFailure(provider, error.limit);
  const name = error instanceof Error ? `${error.name}${'code' in error ? ` ${String((error as { code?: unknown }).code)}` : ''}` : 'error';
  return upstreamFailure({ provider, status: undefined, reason: 'server_error', message: `connection failed (${name})` });
}

/** The error field that names the event size limit a stream outgrew (core/wire/sse.ts, MAX_SSE_EVENT_CHARACTERS). */
const EVENT_LIMIT_FIELD = 'event_size_limit';

/** A stream whose upstream sent one event longer than Keyway reads: a server error, so it may still fall back before the first byte. */
function eventTooLongFailure(provider: string, limit: number): KeywayError {
  return new KeywayError(
    'upstream_error',
    { detail: `${provider} sent a stream event longer than ${limit} characters, the most Keyway reads in one event, so Keyway stopped reading the stream` },
    { reason: 'server_error', extra: { provider, [EVENT_LIMIT_FIELD]: limit } },
  );
}

/**
 * Whether a stream ended because Keyway stopped reading an event over its size limit. The provider was
 * still sending then, so the stream is booked as one cut short (docs/costs.md), whatever reached the client.
 */
export function endedAtEventLimit(error: ErrorDescriptor): boolean {
  return typeof error.extra?.[EVENT_LIMIT_FIELD] === 'number';
}

export interface UpstreamCall {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Where this provider puts its request id and remaining-requests count, read from every answer (429s included). */
  info?: { requestIdHeader: string; remainingHeaders: readonly string[] };
}

const ANONYMOUS_VIA = `${VIA_PROTOCOL} ${VIA_PSEUDONYM}`;

/**
 * Before any upstream connection: the address policy of the scope the core set around this adapter
 * call (core/wire/upstream-policy.ts), and the headers with Keyway's `Via` marker added. Outside a
 * scope (an adapter called directly, as in unit tests) only the marker is added.
 */
function admitUpstream(
  url: string,
  headers: Record<string, string>,
  provider: string,
  given?: unknown,
): Record<string, string> | Promise<Record<string, string>> {
  const scope = (given as UpstreamScope | undefined) ?? currentUpstreamScope();
  const marked = { ...headers, via: scope?.policy.via ?? ANONYMOUS_VIA };
  if (scope === undefined) return marked;
  const verdict = scope.policy.check(url, scope.trust);
  // The common case (an operator URL, an IP literal, a cached name) decides without a lookup or a microtask.
  if (!(verdict instanceof Promise)) return admitted(verdict, url, provider, marked);
  return verdict.then((settled) => admitted(settled, url, provider, marked));
}

function admitted(verdict: UpstreamVerdict, url: string, provider: string, headers: Record<string, string>): Record<string, string> {
  if (verdict.allowed) return headers;
  const host = hostOf(url);
  if (verdict.kind === 'unresolved') throw upstreamFailure({ provider, status: undefined, reason: 'server_error', message: `${host} ${verdict.message}` });
  // Not a provider failure (no reason, status 403): the attempt loop records nothing against the provider's health.
  throw new KeywayError(
    'upstream_not_allowed',
    { detail: `The ${provider} upstream ${host} ${verdict.message}; Keyway did not call it.` },
    { extra: { provider, upstream_rule: verdict.rule } },
  );
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'address';
  }
}

/** Upstream redirects are never followed: the address they name was not checked, and a key's secret would travel there. */
function redirectFailure(provider: string, response: Response): KeywayError {
  void response.body?.cancel().catch(() => undefined);
  return upstreamFailure({
    provider,
    status: response.status,
    reason: 'server_error',
    message: `the upstream redirected (HTTP ${response.status}); Keyway does not follow upstream redirects, so set the key's base_url to the final address`,
  });
}

const isRedirect = (status: number): boolean => status >= 300 && status < 400;

/**
 * POSTs to the upstream. Resolves with the response when it is 2xx; otherwise reads the error body
 * and rejects with what `classify` makes of it.
 */
export async function postUpstream(
  fetchImplementation: typeof fetch,
  call: UpstreamCall,
  context: CallContext,
  provider: string,
  classify: (status: number, body: string, headers: Headers) => KeywayError,
): Promise<Response> {
  const admission = admitUpstream(call.url, call.headers, provider, context.upstreamScope);
  const headers = admission instanceof Promise ? await admission : admission;
  let response: Response;
  try {
    if (context.connectTimeoutMs !== undefined) await ensureConnectable(call.url, context.connectTimeoutMs);
    response = await fetchImplementation(call.url, { method: 'POST', headers, body: call.body, signal: context.signal, redirect: 'manual' });
  } catch (error) {
    if (error instanceof ConnectTimeoutError) throw upstreamFailure({ provider, status: undefined, reason: 'timeout', message: error.message });
    throw networkFailure(provider, error, context.signal);
  }
  context.upstream.status = response.status;
  if (call.info !== undefined) recordUpstreamInfo(context.upstream, response.headers, call.info.requestIdHeader, call.info.remainingHeaders);
  if (response.ok) {
    context.onResponseHead?.(response.status);
    return response;
  }
  if (isRedirect(response.status)) throw redirectFailure(provider, response);
  let text = '';
  try {
    text = await response.text();
  } catch (error) {
    throw networkFailure(provider, error, context.signal);
  }
  throw classify(response.status, text, response.headers);
}

/** GETs a JSON document (models lists). */
export async function getUpstreamJson(
  fetchImplementation: typeof fetch,
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  provider: string,
  classify: (status: number, body: string, headers: Headers) => KeywayError,
): Promise<unknown> {
  const admission = admitUpstream(url, headers, provider);
  const marked = admission instanceof Promise ? await admission : admission;
  let response: Response;
  try {
    response = await fetchImplementation(url, { method: 'GET', headers: marked, signal, redirect: 'manual' });
  } catch (error) {
    throw networkFailure(provider, error, signal);
  }
  if (isRedirect(response.status)) throw redirectFailure(provider, response);
  const text = await response.text();
  if (!response.ok) throw classify(response.status, text, response.headers);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw upstreamFailure({ provider, status: response.status, reason: 'server_error', message: 'the models list is not JSON' });
  }
}

/**
 * A models list's entry with its publication time when the list gives a usable one: Unix seconds
 * (OpenAI's `created`) or an RFC 3339 time (Anthropic's `created_at`). 0 and unparsable values say nothing.
 */
export function listedModel(id: string, created: unknown): ListedModel {
  const seconds = typeof created === 'string' ? Math.floor(Date.parse(created) / 1000) : created;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0 ? { id, created: Math.floor(seconds) } : { id };
}

/** Reads a JSON body, classifying a truncated or non-JSON body as a server error. */
export async function readJsonBody(response: Response, provider: string, signal: AbortSignal): Promise<Record<string, unknown>> {
  return (await readJsonBodyWithText(response, provider, signal)).body;
}

/** Like readJsonBody, keeping the text too, for answers forwarded unchanged. */
export async function readJsonBodyWithText(
  response: Response,
  provider: string,
  signal: AbortSignal,
): Promise<{ body: Record<string, unknown>; text: string }> {
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw networkFailure(provider, error, signal);
  }
  try {
    return { body: JSON.parse(text) as Record<string, unknown>, text };
  } catch {
    throw upstreamFailure({ provider, status: response.status, reason: 'server_error', message: 'the response body is not JSON' });
  }
}

export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function recordUpstreamInfo(info: UpstreamInfo, headers: Headers, requestIdHeader: string, remainingHeaders: readonly string[]): void {
  const requestId = headers.get(requestIdHeader);
  if (requestId !== null) info.requestId = requestId;
  const remaining = readNumberHeader(headers, remainingHeaders);
  if (remaining !== undefined) info.rateLimitRemaining = remaining;
}

/** Splits a `data:` URL into its media type and base64 payload. */
export function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  const match = /^data:([^;,]+)(?:;[^,]*)?;base64,(.*)$/s.exec(url);
  if (!match) return undefined;
  return { mediaType: match[1] as string, data: match[2] as string };
}

/**
 * Parses a tool call's JSON-string arguments into the object native APIs want. `param` names the field
 * in the client's request. Chat requests reach a translation with string arguments
 * (core/wire/chat-shapes.ts); anything else (a plugin's own request) is refused here as well, never a
 * TypeError.
 */
export function parseToolArguments(provider: string, argumentsText: unknown, param = 'messages[].tool_calls[].function.arguments'): Record<string, unknown> {
  if (typeof argumentsText !== 'string') {
    throw new KeywayError(
      'invalid_field',
      { param, detail: `${provider} needs tool-call arguments as a string of JSON; got ${argumentsText === null ? 'null' : typeof argumentsText}` },
      { param },
    );
  }
  if (argumentsText.trim() === '') return {};
  try {
    const parsed = JSON.parse(argumentsText) as unknown;
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new KeywayError(
    'invalid_field',
    { param, detail: `${provider} needs tool-call arguments as a JSON object; got ${JSON.stringify(argumentsText.slice(0, 80))}` },
    { param },
  );
}

/**
 * The conversation as a provider other than Anthropic takes it: nothing only Anthropic reads (a
 * fallback from a request translated for Anthropic, or a client that wrote Anthropic's parts). Search
 * results and documents become text (and images, PDF files) first (searchResultsAsText,
 * documentsAsParts), so a tool message keeps them as text, then tool messages carry text only
 * (textOnlyToolMessages). Returns `messages` itself when nothing changes.
 */
export function portableMessages(messages: ChatMessage[], provider: string, warnings: string[]): ChatMessage[] {
  const portable = documentsAsParts(searchResultsAsText(messages, provider, warnings), provider, warnings);
  return textOnlyToolMessages(portable, provider, warnings);
}

/**
 * The conversation for a provider whose tool messages carry text only (all but Anthropic): a tool
 * message's other parts (an image a tool returned, kept for Anthropic when it was to serve) are
 * dropped with a warning and its text kept; a failed call's `is_error` (Anthropic's) becomes the
 * `Error: ` prefix the Messages dialect writes for these providers, and the tool message's own
 * `cache_control` is left out (no other provider has the field: a fallback from Anthropic must not
 * send it). Returns `messages` itself when there is nothing to change, so a request that needs no
 * change reaches the provider exactly as it came.
 */
export function textOnlyToolMessages(messages: ChatMessage[], provider: string, warnings: string[]): ChatMessage[] {
  if (!messages.some(needsPortableForm)) return messages;
  return messages.map((message, position) => {
    if (!needsPortableForm(message)) return message;
    const { is_error: failed, cache_control: _breakpoint, ...rest } = message;
    let content = rest.content;
    if (hasNonTextToolContent(message)) {
      const warning = `${provider}: dropped non-text content of the tool message at messages[${position}]: tool messages carry text only`;
      if (!warnings.includes(warning)) warnings.push(warning);
      content = (content as ContentPart[]).filter((part) => part.type === 'text');
    }
    return { ...rest, content: failed === true ? withErrorPrefix(content) : content };
  });
}

function needsPortableForm(message: ChatMessage): boolean {
  return message.role === 'tool' && (message.is_error !== undefined || message.cache_control !== undefined || hasNonTextToolContent(message));
}

/** A failed tool result's text with the `Error: ` prefix, on its first text (or alone when it has none). */
function withErrorPrefix(content: ChatMessage['content']): ChatMessage['content'] {
  if (typeof content === 'string') return `Error: ${content}`;
  if (!Array.isArray(content)) return 'Error';
  const index = content.findIndex((part) => part.type === 'text');
  if (index === -1) return [{ type: 'text', text: 'Error' }, ...content];
  return content.map((part, position) => (position === index && part.type === 'text' ? { ...part, text: `Error: ${part.text}` } : part));
}

/** Tools without Anthropic's `cache_control` breakpoints, for a provider that has no such field. */
export function toolsWithoutBreakpoints<Tool extends { cache_control?: unknown }>(tools: Tool[] | undefined): Tool[] | undefined {
  if (tools === undefined || !tools.some((tool) => tool.cache_control !== undefined)) return tools;
  return tools.map(({ cache_control: _breakpoint, ...tool }) => tool as Tool);
}

function hasNonTextToolContent(message: ChatMessage): boolean {
  return message.role === 'tool' && Array.isArray(message.content) && message.content.some((part) => part.type !== 'text');
}
