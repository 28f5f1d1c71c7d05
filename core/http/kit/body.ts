import { Value } from '@sinclair/typebox/value';
import type { Static, TSchema } from '@sinclair/typebox';
import { KeywayError } from '../../errors.ts';

/**
 * Reads a JSON body within the size limit. The declared length is checked before reading; a body
 * sent without one is counted as it arrives, so an oversized upload is cut off early.
 */
export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw new KeywayError('request_too_large', { size: declared, limit: maxBytes });
  let text: string;
  if (declared !== null || request.body === null) text = await request.text();
  else text = await readLimited(request.body, maxBytes);
  if (text.length > maxBytes) throw new KeywayError('request_too_large', { size: text.length, limit: maxBytes });
  if (text.length === 0) throw new KeywayError('invalid_json', { detail: 'the body is empty' });
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new KeywayError('invalid_json', { detail: (error as Error).message.slice(0, 200) });
  }
}

async function readLimited(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<string> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new KeywayError('request_too_large', { size: `more than ${maxBytes}`, limit: maxBytes });
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** JSON path of a TypeBox error (`/providers/0/name`) as the dotted field a client recognises. */
export function fieldName(path: string): string {
  return path
    .split('/')
    .filter((segment) => segment.length > 0)
    .map((segment, position) => (/^\d+$/.test(segment) ? `[${segment}]` : position === 0 ? segment : `.${segment}`))
    .join('');
}

/** Validates a body against a schema; the error names the first wrong field and what was expected. */
export function validateBody<Schema extends TSchema>(schema: Schema, body: unknown): Static<Schema> {
  if (Value.Check(schema, body)) return body as Static<Schema>;
  const first = Value.Errors(schema, body).First();
  if (first === undefined) throw new KeywayError('invalid_request', { detail: 'The request body is invalid.' });
  const param = fieldName(first.path) || 'body';
  if (first.value === undefined) throw new KeywayError('missing_field', { param }, { param });
  throw new KeywayError('invalid_field', { param, detail: first.message.toLowerCase() }, { param });
}
