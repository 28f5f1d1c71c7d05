// Retry-After, as Keyway reads it from upstreams and writes it to clients: within sane bounds, and
// only when it says something.

/**
 * The longest wait Keyway passes on or asks for: one day. Keyway's own longest is a budget's (until
 * the next UTC midnight), and a provider's daily quota may honestly say hours; anything longer is a
 * broken upstream. An upstream's far-future date (QA14: 2099, about 73 years) would otherwise tell a
 * client that honours it never to retry, and keep the key cooling down for as long.
 */
export const MAX_RETRY_AFTER_SECONDS = 86_400;

/** A wait in seconds cut to [0, one day]; undefined for anything that is not a number of seconds. */
export function saneRetryAfter(seconds: number | undefined): number | undefined {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return undefined;
  return Math.min(seconds, MAX_RETRY_AFTER_SECONDS);
}

/** The `Retry-After` header's value for a wait: whole seconds, rounded up; undefined when there is none to send. */
export function retryAfterHeader(seconds: number | undefined): string | undefined {
  const sane = saneRetryAfter(seconds);
  return sane === undefined ? undefined : String(Math.ceil(sane));
}

/** RFC 9110 delay-seconds (digits), with a fraction tolerated: `retry-after-ms` values have one. */
const DELAY = /^\d+(?:\.\d+)?$/;
/** The three HTTP-date forms all start with a day name and hold hh:mm:ss; Date.parse alone takes far more than that. */
const HTTP_DATE = /^[A-Za-z]{3,9},? .*\b\d{2}:\d{2}:\d{2}\b/;

function secondsUntil(httpDate: string): number | undefined {
  if (!HTTP_DATE.test(httpDate)) return undefined;
  const at = Date.parse(httpDate);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}

/**
 * `retry-after-ms` (OpenAI's, in milliseconds), else `Retry-After` (delay-seconds or an HTTP date),
 * in seconds, at most a day. A value that is neither (empty, negative, `0x10`, `soon`) is ignored,
 * as if the header were absent, rather than read as 0 or as whatever Date.parse makes of it.
 */
export function parseRetryAfter(headers: Headers): number | undefined {
  const milliseconds = headers.get('retry-after-ms')?.trim();
  if (milliseconds !== undefined && DELAY.test(milliseconds)) return saneRetryAfter(Number(milliseconds) / 1000);
  const value = headers.get('retry-after')?.trim();
  if (value === undefined || value === '') return undefined;
  return saneRetryAfter(DELAY.test(value) ? Number(value) : secondsUntil(value));
}
