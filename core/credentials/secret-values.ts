// The exact secret values in play in this process: provider keys while they are decrypted, the
// operator key. Pattern redaction catches keys with a known shape (`sk-…`, `AIza…`); keys without
// one (vLLM, Cohere, some Anthropic keys, a self-hosted server's token) are only caught by value.
// Every error text a client sees and every log line is scrubbed of these values.

/** Values shorter than this are too likely to occur in ordinary text to be worth replacing. */
const MINIMUM_LENGTH = 8;
/** Secrets are found by their first characters: one map lookup per position of the scanned text. */
const PREFIX_LENGTH = 6;

const byPrefix = new Map<string, Map<string, number>>();
let count = 0;

/** Starts redacting `value` everywhere; pairs with `forgetSecret` (counted, so two owners can hold it). */
export function rememberSecret(value: string | undefined): void {
  if (value === undefined || value.length < MINIMUM_LENGTH) return;
  const prefix = value.slice(0, PREFIX_LENGTH);
  let values = byPrefix.get(prefix);
  if (values === undefined) byPrefix.set(prefix, (values = new Map()));
  const holders = values.get(value) ?? 0;
  if (holders === 0) count++;
  values.set(value, holders + 1);
}

export function forgetSecret(value: string | undefined): void {
  if (value === undefined) return;
  const prefix = value.slice(0, PREFIX_LENGTH);
  const values = byPrefix.get(prefix);
  const holders = values?.get(value);
  if (values === undefined || holders === undefined) return;
  if (holders > 1) {
    values.set(value, holders - 1);
    return;
  }
  values.delete(value);
  count--;
  if (values.size === 0) byPrefix.delete(prefix);
}

/** Replaces every remembered secret in `text` with `[REDACTED]`. O(text length) when none occurs. */
export function redactKnownSecrets(text: string): string {
  if (count === 0 || text.length < MINIMUM_LENGTH) return text;
  let result = text;
  for (let position = 0; position + MINIMUM_LENGTH <= result.length; position++) {
    const values = byPrefix.get(result.slice(position, position + PREFIX_LENGTH));
    if (values === undefined) continue;
    for (const value of values.keys()) {
      if (result.startsWith(value, position)) {
        result = `${result.slice(0, position)}[REDACTED]${result.slice(position + value.length)}`;
        position += '[REDACTED]'.length - 1;
        break;
      }
    }
  }
  return result;
}

export function rememberedSecretCount(): number {
  return count;
}
