// The texts in a block a dialect forwards to a provider as the client wrote it (core/spec/vocabulary.ts,
// FORWARDED_TEXTS): every string the provider reads as text, found without knowing the block's type,
// so a block type added to a provider's API tomorrow is read too. Left out: what is no text to anyone
// (ids, types, signatures, encrypted content, base64 data) — scanning them would cost much and find
// false secrets — and what the dialect names as such for its own blocks.

import { parseDataUrl } from './provider-kit.ts';

type Json = Record<string, unknown>;

export interface LeafTextOptions {
  /** A field of `owner` that holds no text although it is a string (an image's base64 `result`). */
  opaque?(key: string, owner: Json): boolean;
}

/** Media types a provider reads as text: `text/*`, JSON, XML, YAML, scripts and the `+json`/`+xml` families. */
const TEXT_MEDIA_TYPE =
  /^(?:text\/|application\/(?:json|xml|yaml|x-yaml|javascript|x-javascript|x-sh|x-python|sql|csv|x-ndjson|rtf)$|application\/[\w.-]+\+(?:json|xml)$)/i;

/** The text a data URL holds when its media type is text; undefined for binary data and for anything else. */
export function dataUrlText(url: unknown): string | undefined {
  if (typeof url !== 'string' || !url.startsWith('data:')) return undefined;
  const comma = url.indexOf(',');
  if (comma === -1) return undefined;
  const header = url.slice(5, comma);
  if (!TEXT_MEDIA_TYPE.test(header.split(';')[0]?.trim() ?? '')) return undefined;
  const encoded = parseDataUrl(url);
  if (encoded !== undefined) return Buffer.from(encoded.data, 'base64').toString('utf8');
  try {
    return decodeURIComponent(url.slice(comma + 1));
  } catch {
    return url.slice(comma + 1);
  }
}

/** Names that never hold text a model reads: ids, enums, signatures and cache settings. */
const NEVER_TEXT = new Set(['id', 'type', 'status', 'role', 'signature', 'media_type', 'cache_control']);

function isOpaque(key: string, owner: Json, options: LeafTextOptions): boolean {
  if (NEVER_TEXT.has(key) || key.endsWith('_id') || key.startsWith('encrypted_')) return true;
  // `data` is base64 (an image, a PDF) or encrypted (Anthropic's redacted thinking) unless its owner says it is text.
  if (key === 'data' && owner.type !== 'text') return true;
  return options.opaque?.(key, owner) === true;
}

/**
 * A tool's input (an object the provider reads as its JSON text, as a tool call's arguments are): kept
 * whole, so a value stays beside the name that labels it (`"SecretAccessKey": "…"`).
 */
const JSON_FIELDS = new Set(['input']);

function walk(value: unknown, key: string | undefined, texts: string[], options: LeafTextOptions): void {
  if (typeof value === 'string') {
    if (!value.startsWith('data:')) texts.push(value);
    else {
      const decoded = dataUrlText(value);
      if (decoded !== undefined) texts.push(decoded);
    }
    return;
  }
  // A number reaches the provider as its digits (a card number sent as a JSON number).
  if (typeof value === 'number') {
    texts.push(String(value));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (key !== undefined && JSON_FIELDS.has(key) && !Array.isArray(value)) {
    texts.push(JSON.stringify(value));
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) walk(item, undefined, texts, options);
    return;
  }
  const owner = value as Json;
  for (const name in owner) if (!isOpaque(name, owner, options)) walk(owner[name], name, texts, options);
}

/** Every text in `value` a provider reads (see the header), in order. */
export function leafTexts(value: unknown, options: LeafTextOptions = {}): string[] {
  const texts: string[] = [];
  walk(value, undefined, texts, options);
  return texts;
}
