// How a key reference is written in the provider_keys row (its `ciphertext` column, with the
// `key-reference` crypto backend), and its fingerprint: pure functions, no runtime.

import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { KeyReference } from '../spec/key-source.ts';

export const KeyReferenceSchema = Type.Object(
  {
    source: Type.String({ minLength: 1, maxLength: 64, description: 'The key source (GET /v1/plugins lists them): env, file, command, vault-kv…' }),
    locator: Type.String({ minLength: 1, maxLength: 1024, description: 'What the source reads: a variable name, a file, a command name, a Vault path' }),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Source-specific options (a Vault field or version…)' })),
  },
  { additionalProperties: false, description: 'Where the key lives; Keyway stores this, never the key (docs/key-lifecycle.md)' },
);

/** Sorted keys, so two spellings of one reference are one string (and one fingerprint). */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .sort(([left], [right]) => (left < right ? -1 : 1))
      .map(([key, entry]) => [key, canonical(entry)]),
  );
}

export function serializeReference(reference: KeyReference): string {
  return JSON.stringify(canonical({ source: reference.source, locator: reference.locator, options: reference.options ?? {} }));
}

export function parseStoredReference(text: string): KeyReference | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<KeyReference>;
    if (typeof parsed.source !== 'string' || typeof parsed.locator !== 'string') return undefined;
    const options = parsed.options !== null && typeof parsed.options === 'object' ? parsed.options : {};
    return { source: parsed.source, locator: parsed.locator, options };
  } catch {
    return undefined;
  }
}

/**
 * A reference's fingerprint is derived from the reference, not from the key: in never-store mode the
 * database holds nothing computed from key material except the masked last four characters.
 */
export function referenceFingerprint(reference: KeyReference): string {
  return `ref:${createHash('sha256').update(serializeReference(reference)).digest('hex').slice(0, 16)}`;
}
