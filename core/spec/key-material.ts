// What a provider key Keyway takes may look like: the one rule every field and header that carries
// key material shares (`providers[].api_key` of account and platform keys, rotation's `new_api_key`,
// reconciliation's `admin_key`, the `X-Provider-Key` header). A key goes upstream in an HTTP header,
// which cannot carry characters outside visible ASCII, and no provider issues keys with others: a key
// such as the docs' old `sk-…` placeholder was stored, then failed every use as "connection failed".

import { Type, type TString } from '@sinclair/typebox';

/** Visible ASCII, `!` to `~`: no space, no control character, nothing beyond ASCII. */
export const KEY_MATERIAL_PATTERN = '^[\\x21-\\x7E]+$';

const KEY_MATERIAL = new RegExp(KEY_MATERIAL_PATTERN);

/** The rule in words, as it follows "Invalid value for '<field>': " (the key itself is never repeated). */
export const KEY_MATERIAL_RULE = 'must be printable ASCII without spaces: provider keys have no other characters';

export function isKeyMaterial(text: string): boolean {
  return KEY_MATERIAL.test(text);
}

export interface KeyMaterialOptions {
  minLength?: number;
  maxLength?: number;
  description?: string;
}

/** A body field that holds a provider key: the pattern above, refused in the words above. */
export function KeyMaterialSchema(options: KeyMaterialOptions = {}): TString {
  return Type.String({
    minLength: options.minLength ?? 1,
    maxLength: options.maxLength ?? 4096,
    pattern: KEY_MATERIAL_PATTERN,
    ...(options.description === undefined ? {} : { description: options.description }),
    errorMessage: { pattern: KEY_MATERIAL_RULE },
  });
}
