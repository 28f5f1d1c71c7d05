// The texts a content part carries to the provider, for the scan. Text is scanned wherever it travels:
// a text part, a refusal, a thinking block, a search result's fields, a document's title, context and
// text (Anthropic reads the block, every other provider gets it as text), and a file or image whose data
// URL holds text (a `text/plain` file part: Gemini reads it inline). Binary data (images, audio, PDFs)
// is not text: scanning base64 would cost much and find false secrets.

import { dataUrlText } from '../../core/wire/forwarded-texts.ts';

type Part = Record<string, unknown>;

function isRecord(value: unknown): value is Part {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Its content is text blocks (anything else in it is refused, as Anthropic refuses it, before any provider reads it). */
function searchResultTexts(part: Part, texts: string[]): void {
  for (const field of ['title', 'source'] as const) if (typeof part[field] === 'string') texts.push(part[field]);
  if (!Array.isArray(part.content)) return;
  for (const block of part.content as unknown[]) if (isRecord(block) && typeof block.text === 'string') texts.push(block.text);
}

/** A document's title and context, and its text: a text source's data, a custom-content source's text blocks. */
function documentTexts(part: Part, texts: string[]): void {
  for (const field of ['title', 'context'] as const) if (typeof part[field] === 'string') texts.push(part[field]);
  const source = part.source;
  if (!isRecord(source)) return;
  if (source.type === 'text' && typeof source.data === 'string') texts.push(source.data);
  if (source.type !== 'content') return;
  if (typeof source.content === 'string') texts.push(source.content);
  else if (Array.isArray(source.content))
    for (const block of source.content as unknown[]) if (isRecord(block) && typeof block.text === 'string') texts.push(block.text);
}

/** A file part's (`file.file_data`) or an image part's (`image_url.url`) data URL, when it holds text. */
function dataTexts(part: Part, texts: string[]): void {
  const url =
    part.type === 'file' && isRecord(part.file) ? part.file.file_data : part.type === 'image_url' && isRecord(part.image_url) ? part.image_url.url : undefined;
  const text = dataUrlText(url);
  if (text !== undefined) texts.push(text);
}

/** A content part's texts as the provider reads them (see the header). */
export function partTexts(part: Part): string[] {
  const texts: string[] = [];
  for (const field of ['text', 'refusal', 'thinking'] as const) {
    const value = part[field];
    if (typeof value === 'string') texts.push(value);
  }
  if (part.type === 'search_result') searchResultTexts(part, texts);
  else if (part.type === 'document') documentTexts(part, texts);
  else dataTexts(part, texts);
  return texts;
}
