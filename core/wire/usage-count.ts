// How the providers' usage readers read one token count. Usage is data from outside: a count can be
// missing, null, text or 1e999 (JSON's Infinity). The readers keep 0 in the Usage for such a count (a
// client's answer shows what it always did) and name it in `Usage.unreported`, so that the account
// stage books Keyway's estimate for it instead of a free request (docs/security.md, "The books").
// Range checks (negative, fractional, absurd) are the account stage's: core/accounting/usage-limits.ts.

/**
 * A string of decimal digits is read as the count it spells: protobuf's JSON mapping writes 64-bit
 * integers as strings, and an OpenAI-compatible server built on it sends `"prompt_tokens": "12"`.
 * Fifteen digits at most: a safe integer, and far above the account stage's 10 million cap.
 */
const DIGITS = /^[0-9]{1,15}$/;

/** A count as the provider sent it: a finite number as is, a digit string parsed; undefined when it sent no usable count. */
export function reportedCount(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && DIGITS.test(value)) return Number(value);
  return undefined;
}

/** What a provider sent instead of a count, for the warning: never its text, which is the upstream's. */
export function describeReported(value: unknown): string {
  if (value === undefined) return 'absent';
  if (value === null) return 'null';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `text of ${value.length} characters`;
  return Array.isArray(value) ? 'array' : typeof value;
}

/** The unreported counts of one usage, named by Usage field: undefined (nothing allocated) when both were reported. */
export function unreportedCounts(
  input: number | undefined,
  inputSent: unknown,
  output: number | undefined,
  outputSent: unknown,
): Record<string, string> | undefined {
  if (input !== undefined && output !== undefined) return undefined;
  const unreported: Record<string, string> = {};
  if (input === undefined) unreported.inputTokens = describeReported(inputSent);
  if (output === undefined) unreported.outputTokens = describeReported(outputSent);
  return unreported;
}
