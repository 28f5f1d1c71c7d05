// Reading an HTTP/1.1 response head: the status line, the headers, and how the body is framed
// (RFC 9112 section 6.3).

import { UpstreamConnectionError } from './errors.ts';

export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

export interface ResponseHead {
  status: number;
  statusText: string;
  headers: Headers;
  framing: Framing;
  /** Whether the connection may carry another request once this body has been read. */
  keepAlive: boolean;
}

/** A head larger than this is refused rather than buffered without end. */
export const MAX_HEAD_BYTES = 64 * 1024;

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function malformed(what: string): UpstreamConnectionError {
  return new UpstreamConnectionError('EPROTO', `the upstream sent a malformed HTTP response (${what})`);
}

/** Parses `text`, the head without its final blank line. `method` decides whether a body follows. */
export function parseHead(text: string, method: string): ResponseHead {
  const lines = text.split('\r\n');
  const status = STATUS_LINE.exec(lines[0] ?? '');
  if (status === null) throw malformed('status line');
  const headers = new Headers();
  let lengths: string | undefined;
  let transferEncoding: string | undefined;
  let connection = '';
  for (let index = 1; index < lines.length; index++) {
    const line = lines[index] as string;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!HEADER_NAME.test(name)) throw malformed('header line');
    const value = line.slice(colon + 1).trim();
    try {
      headers.append(name, value);
    } catch {
      throw malformed('header value');
    }
    const lower = name.toLowerCase();
    if (lower === 'content-length') lengths = lengths === undefined ? value : `${lengths},${value}`;
    else if (lower === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : `${transferEncoding},${value}`;
    else if (lower === 'connection') connection += `,${value.toLowerCase()}`;
  }
  const code = Number(status[2]);
  const http10 = status[1] === '0';
  const framing = framingOf(code, method, transferEncoding, lengths);
  const closes = connection.split(',').some((token) => token.trim() === 'close');
  const keepAlive = !http10 && !closes && framing.kind !== 'close';
  return { status: code, statusText: status[3] ?? '', headers, framing, keepAlive };
}

function framingOf(status: number, method: string, transferEncoding: string | undefined, lengths: string | undefined): Framing {
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) return { kind: 'none' };
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.split(',').map((coding) => coding.trim().toLowerCase());
    // A chunked message that also names a length is read as chunked (RFC 9112 6.3 item 3); any other coding runs to the close.
    return codings[codings.length - 1] === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  if (lengths === undefined) return { kind: 'close' };
  const values = new Set(lengths.split(',').map((value) => value.trim()));
  const [only] = values;
  if (values.size !== 1 || only === undefined || !/^\d{1,15}$/.test(only)) throw malformed('Content-Length');
  return { kind: 'length', length: Number(only) };
}
