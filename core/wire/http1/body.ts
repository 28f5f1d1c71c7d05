// Reading a response body as its framing says: a length, chunks, or everything until the close.
// Bytes arrive in whatever pieces the socket delivers; the decoder keeps the little state it needs.

import { UpstreamConnectionError } from './errors.ts';
import type { Framing } from './head.ts';

type ChunkState = 'size' | 'data' | 'data-end' | 'trailer';

/** A chunk-size or trailer line longer than this is refused. */
const MAX_LINE = 8 * 1024;
const LINE_FEED = 10;

function malformed(what: string): UpstreamConnectionError {
  return new UpstreamConnectionError('EPROTO', `the upstream sent a malformed chunked body (${what})`);
}

export class BodyDecoder {
  done: boolean;
  private remaining: number;
  private chunkState: ChunkState = 'size';
  private line = '';

  constructor(private readonly framing: Framing) {
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    this.done = framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0);
  }

  /** Hands the body bytes in `bytes` to `emit`; returns how many bytes were used (the rest follow the body). */
  push(bytes: Buffer, emit: (piece: Buffer) => void): number {
    if (this.done) return 0;
    if (this.framing.kind === 'close') {
      if (bytes.length > 0) emit(bytes);
      return bytes.length;
    }
    if (this.framing.kind === 'length') {
      const take = Math.min(this.remaining, bytes.length);
      if (take > 0) emit(take === bytes.length ? bytes : bytes.subarray(0, take));
      this.remaining -= take;
      this.done = this.remaining === 0;
      return take;
    }
    return this.pushChunked(bytes, emit);
  }

  private pushChunked(bytes: Buffer, emit: (piece: Buffer) => void): number {
    let at = 0;
    while (at < bytes.length && !this.done) {
      if (this.chunkState === 'data') {
        const take = Math.min(this.remaining, bytes.length - at);
        emit(bytes.subarray(at, at + take));
        this.remaining -= take;
        at += take;
        if (this.remaining === 0) this.chunkState = 'data-end';
        continue;
      }
      const lineEnd = bytes.indexOf(LINE_FEED, at);
      if (lineEnd < 0) {
        this.line += bytes.toString('latin1', at);
        if (this.line.length > MAX_LINE) throw malformed('line too long');
        return bytes.length;
      }
      const line = this.line + bytes.toString('latin1', at, lineEnd);
      this.line = '';
      at = lineEnd + 1;
      this.endLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
    return at;
  }

  private endLine(line: string): void {
    if (this.chunkState === 'data-end') {
      if (line !== '') throw malformed('chunk not followed by CRLF');
      this.chunkState = 'size';
    } else if (this.chunkState === 'size') {
      const size = (line.split(';')[0] as string).trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(size)) throw malformed('chunk size');
      this.remaining = Number.parseInt(size, 16);
      this.chunkState = this.remaining === 0 ? 'trailer' : 'data';
    } else if (line === '') {
      // Trailer fields are read and dropped, as fetch does; the empty line ends the body.
      this.done = true;
    }
  }
}
