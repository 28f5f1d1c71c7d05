// A Responses WebSocket client as Codex drives one: Bun's WebSocket with the upgrade's headers, one
// `response.create` at a time, every frame kept, a turn read until its terminal event or an error.

import type { ResponsesEvent } from './event-sequence.ts';

type Json = Record<string, unknown>;

/** A turn's last frame: response.failed is followed by its error event, which ends the turn. */
const TERMINAL = new Set(['response.completed', 'response.incomplete', 'error']);

export interface SocketTurn {
  /** Every frame of the turn, parsed, in order. */
  frames: Json[];
  /** The frames as the SSE checker reads events (a frame's type is its event name). */
  events: ResponsesEvent[];
  last: Json;
}

export class ResponsesSocketClient {
  readonly frames: Json[] = [];
  private waiters: Array<() => void> = [];
  closeCode: number | undefined;
  private closedSignal: Promise<void>;

  private constructor(private readonly socket: WebSocket) {
    let markClosed: () => void = () => undefined;
    this.closedSignal = new Promise((resolve) => {
      markClosed = resolve;
    });
    socket.addEventListener('message', (event) => {
      this.frames.push(JSON.parse(String(event.data)) as Json);
      this.wake();
    });
    socket.addEventListener('close', (event) => {
      this.closeCode = event.code;
      markClosed();
      this.wake();
    });
  }

  /** Opens the socket; rejects when the upgrade is refused. */
  static open(url: string, headers: Record<string, string>): Promise<ResponsesSocketClient> {
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/responses`, { headers } as unknown as string[]);
    return new Promise((resolve, reject) => {
      socket.addEventListener('open', () => resolve(new ResponsesSocketClient(socket)), { once: true });
      socket.addEventListener('error', () => reject(new Error('the WebSocket upgrade was refused')), { once: true });
    });
  }

  send(event: Json | string): void {
    this.socket.send(typeof event === 'string' ? event : JSON.stringify(event));
  }

  /** Waits until `count` frames have arrived in all (or the socket closed). */
  async waitForFrames(count: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < count && this.closeCode === undefined) {
      if (Date.now() > deadline) throw new Error(`waited for ${count} frames, got ${this.frames.length}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Sends one client event and reads the frames it causes, up to its terminal event. */
  async turn(event: Json | string): Promise<SocketTurn> {
    const start = this.frames.length;
    this.send(event);
    return this.readTurn(start);
  }

  async readTurn(start: number): Promise<SocketTurn> {
    for (let seen = start; ; seen++) {
      await this.waitForFrames(seen + 1);
      const frame = this.frames[seen];
      if (frame === undefined) throw new Error(`the socket closed (${String(this.closeCode)}) before the turn ended`);
      if (TERMINAL.has(String(frame.type))) {
        const frames = this.frames.slice(start, seen + 1);
        return { frames, events: frames.map((data) => ({ name: String(data.type), data })), last: frame };
      }
    }
  }

  close(): Promise<void> {
    this.socket.close();
    return this.closedSignal;
  }

  closed(): Promise<void> {
    return this.closedSignal;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** The upgrade request Codex sends, with this key. */
export function codexUpgradeHeaders(key: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    authorization: `Bearer ${key}`,
    'openai-beta': 'responses_websockets=2026-02-06',
    originator: 'codex_cli_rs',
    'session-id': '0199-ws-session',
    'thread-id': '0199-ws-thread',
    ...extra,
  };
}
