// Anthropic's documents (`document` blocks) in the shared vocabulary. Anthropic takes the block as the
// client wrote it: title, context, citations flag and cache_control included. Every other provider gets
// what the document holds in the parts it takes: text (a plain-text or custom-content document, under
// its title and context), images (from custom content) and a PDF as a `file` part. A PDF by URL or a
// Files API id means nothing to a provider without documents: refused, 400 naming the block, never dropped.

import { invalidField, KeywayError } from '../errors.ts';
import type { ChatMessage, ContentPart, DocumentPart } from '../spec/vocabulary.ts';

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(block: Json, field: string, path: string): void {
  const value = block[field];
  if (value !== undefined && value !== null && typeof value !== 'string') throw invalidField(`${path}.${field}`, 'must be a string');
}

function requireString(source: Json, field: string, path: string): void {
  if (typeof source[field] !== 'string') throw invalidField(`${path}.source.${field}`, 'must be a string');
}

/** A custom-content document's blocks: text and images, as Anthropic's ContentBlockSource takes them. */
function checkContentSource(content: unknown, path: string): void {
  if (typeof content === 'string') return;
  if (!Array.isArray(content)) throw invalidField(`${path}.source.content`, 'must be a string or an array of text and image blocks');
  (content as unknown[]).forEach((item, position) => {
    const itemPath = `${path}.source.content[${position}]`;
    if (isRecord(item) && item.type === 'text' && typeof item.text === 'string') return;
    if (isRecord(item) && item.type === 'image' && isRecord(item.source)) return;
    throw invalidField(itemPath, 'must be a text or an image block');
  });
}

/** What each source type needs (Anthropic's Base64PDFSource, PlainTextSource, ContentBlockSource, URLPDFSource, FileDocumentSource). */
const SOURCE_CHECKS: Record<string, (source: Json, path: string) => void> = {
  base64: (source, path) => {
    if (source.media_type !== 'application/pdf') throw invalidField(`${path}.source.media_type`, "must be 'application/pdf' for a base64 document");
    requireString(source, 'data', path);
  },
  text: (source, path) => {
    if (source.media_type !== 'text/plain') throw invalidField(`${path}.source.media_type`, "must be 'text/plain' for a text document");
    requireString(source, 'data', path);
  },
  content: (source, path) => checkContentSource(source.content, path),
  url: (source, path) => requireString(source, 'url', path),
  file: (source, path) => requireString(source, 'file_id', path),
};

/** Refuses a document Anthropic would refuse for its shape; other fields are Anthropic's to judge when it serves. */
export function checkDocument(block: Json, path: string): DocumentPart {
  const source = block.source;
  if (!isRecord(source)) throw invalidField(`${path}.source`, 'must be an object');
  const check = SOURCE_CHECKS[String(source.type)];
  if (check === undefined) throw invalidField(`${path}.source.type`, "must be 'base64', 'text', 'content', 'url' or 'file'");
  check(source, path);
  optionalString(block, 'title', path);
  optionalString(block, 'context', path);
  return block as DocumentPart;
}

/** The title and context, which a provider without documents reads before the document's own text. */
function heading(document: DocumentPart): string[] {
  const lines: string[] = [];
  if (typeof document.title === 'string' && document.title !== '') lines.push(`Document: ${document.title}`);
  if (typeof document.context === 'string' && document.context !== '') lines.push(document.context);
  return lines;
}

/** `what` (a PDF by URL, a Files API id) means something only to a provider that takes document blocks. */
function untranslatable(what: string, path: string, provider: string): KeywayError {
  return new KeywayError(
    'unsupported_feature',
    {
      detail: `${path}: ${what} cannot be sent to ${provider}, which takes no document blocks; send the data itself (base64), or route the request to a provider that takes them.`,
    },
    { param: path },
  );
}

const FILE_ID = "a Files API id ('source.type': 'file')";

function imagePart(image: Json, path: string, provider: string): ContentPart {
  const source = isRecord(image.source) ? image.source : {};
  if (source.type === 'base64' && typeof source.media_type === 'string' && typeof source.data === 'string')
    return { type: 'image_url', image_url: { url: `data:${source.media_type};base64,${source.data}` } };
  if (source.type === 'url' && typeof source.url === 'string') return { type: 'image_url', image_url: { url: source.url } };
  if (source.type === 'file') throw untranslatable(`an image by ${FILE_ID}`, path, provider);
  throw invalidField(`${path}.source`, 'must be a base64, URL or file image source');
}

/** A custom-content document: its heading joined to the text that follows it, images as image parts. */
function contentParts(document: DocumentPart, path: string, provider: string): ContentPart[] {
  const content = document.source.content;
  const blocks = typeof content === 'string' ? [{ type: 'text', text: content }] : (content as Json[]);
  const parts: ContentPart[] = [];
  let texts = heading(document);
  blocks.forEach((block, position) => {
    if (block.type === 'text') {
      texts.push(block.text as string);
      return;
    }
    if (texts.length > 0) parts.push({ type: 'text', text: texts.join('\n\n') });
    texts = [];
    parts.push(imagePart(block, `${path}.source.content[${position}]`, provider));
  });
  if (texts.length > 0) parts.push({ type: 'text', text: texts.join('\n\n') });
  return parts;
}

/** A document as the parts a provider without documents takes (the vocabulary's own); refuses what cannot be translated. */
export function documentParts(document: DocumentPart, path: string, provider: string): ContentPart[] {
  const source = document.source;
  switch (source.type) {
    case 'text':
      return [{ type: 'text', text: [...heading(document), source.data as string].join('\n\n') }];
    case 'content':
      return contentParts(document, path, provider);
    case 'base64': {
      const file: Json = { file_data: `data:application/pdf;base64,${source.data as string}` };
      if (typeof document.title === 'string' && document.title !== '') file.filename = document.title;
      const context = typeof document.context === 'string' && document.context !== '' ? [{ type: 'text', text: document.context }] : [];
      return [...context, { type: 'file', file }];
    }
    case 'url':
      throw untranslatable("a PDF by URL ('source.type': 'url')", path, provider);
    default:
      throw untranslatable(`a document by ${FILE_ID}`, path, provider);
  }
}

/**
 * A document as one text, for a message that carries text only (most providers' tool results): a text or
 * custom-content document of text; anything else (a PDF, an image) is refused, 400 naming the block.
 */
export function documentText(document: DocumentPart, path: string, provider: string): string {
  const parts = documentParts(document, path, provider);
  if (parts.length === 1 && parts[0]?.type === 'text') return parts[0].text as string;
  throw new KeywayError(
    'unsupported_feature',
    { detail: `${path}: a tool result sent to ${provider} carries text only, and this document holds a PDF or images.` },
    { param: path },
  );
}

function hasDocument(message: ChatMessage): boolean {
  return Array.isArray(message.content) && message.content.some((part) => part.type === 'document');
}

function portableContent(message: ChatMessage, position: number, provider: string): ContentPart[] {
  return (message.content as ContentPart[]).flatMap((part, index): ContentPart[] => {
    if (part.type !== 'document') return [part];
    const path = `messages[${position}].content[${index}]`;
    const document = checkDocument(part, path);
    if (message.role === 'tool') return [{ type: 'text', text: documentText(document, path, provider) }];
    return documentParts(document, path, provider);
  });
}

/**
 * The conversation for a provider without documents (all but Anthropic): each `document` part (kept
 * for Anthropic, or written by a client) becomes the parts above, without its citations flag or
 * cache_control, and the change is warned once per message. Returns `messages` itself when none holds one.
 */
export function documentsAsParts(messages: ChatMessage[], provider: string, warnings: string[]): ChatMessage[] {
  if (!messages.some(hasDocument)) return messages;
  return messages.map((message, position) => {
    if (!hasDocument(message)) return message;
    const warning = `${provider}: the documents at messages[${position}] were sent as text, images and PDF files (title and context as text, without citations): this provider takes no document blocks`;
    if (!warnings.includes(warning)) warnings.push(warning);
    return { ...message, content: portableContent(message, position, provider) };
  });
}
