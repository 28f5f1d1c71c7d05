// WebSocket upgrades for plugin routes (RouteDefinition.websocket), on Bun's own WebSocket server:
// one set of server handlers that hands each socket's events to the handler its route returned, a
// peer with backpressure (send's answer, then `drained()`), and every socket closed at shutdown.

import type { Server, ServerWebSocket, WebSocketHandler as BunWebSocketHandler } from 'bun';
import type { WebSocketHandler, WebSocketPeer } from '../spec/websocket.ts';

interface SocketData {
  handler: WebSocketHandler;
  peer: SocketPeer;
}

/** 1001: the server is going away (shutdown). */
const GOING_AWAY = 1001;
const INTERNAL_ERROR = 1011;

class SocketPeer implements WebSocketPeer {
  socket: ServerWebSocket<SocketData> | undefined;
  handler: WebSocketHandler | undefined;
  closed = false;
  private waiting: Array<() => void> = [];

  send(text: string): boolean {
    if (this.closed || this.socket === undefined) return false;
    // Bun: bytes written, -1 when buffered under backpressure, 0 when dropped.
    return this.socket.send(text) > 0;
  }

  drained(): Promise<void> {
    if (this.closed || this.socket === undefined || this.socket.getBufferedAmount() === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.socket?.close(code, reason);
  }

  /** Bun's drain event: the buffer took what was waiting, the sender may go on. */
  release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  ended(): void {
    this.closed = true;
    this.release();
  }
}

export interface WebSocketHub {
  /** For Bun.serve's `websocket` option. */
  serverHandlers(maxPayloadLength: number): BunWebSocketHandler<SocketData>;
  /** Upgrades the request; false when it is not a valid WebSocket handshake (nothing was sent). */
  upgrade(server: Server<unknown>, request: Request, handler: WebSocketHandler, headers: Record<string, string>): boolean;
  /**
   * Shutdown: lets each socket's handler finish what is in flight (`stop`), then closes the socket
   * with 1001. Resolves once every socket is closed.
   */
  closeAll(): Promise<void>;
}

export function createWebSocketHub(): WebSocketHub {
  const open = new Set<SocketPeer>();
  return {
    serverHandlers: (maxPayloadLength) => ({
      // Frames over the body limit close the socket with 1009 before any handler sees them.
      maxPayloadLength,
      open(socket) {
        const { peer, handler } = socket.data;
        peer.socket = socket;
        peer.handler = handler;
        open.add(peer);
        handler.open?.(peer);
      },
      message(socket, message) {
        try {
          socket.data.handler.message(socket.data.peer, typeof message === 'string' ? message : new Uint8Array(message));
        } catch {
          // A handler's own failure must not reach Bun's server: the socket ends as an internal error.
          socket.data.peer.close(INTERNAL_ERROR, 'internal error');
        }
      },
      drain(socket) {
        socket.data.peer.release();
      },
      close(socket, code, reason) {
        const { peer, handler } = socket.data;
        open.delete(peer);
        peer.ended();
        handler.close?.(peer, code, reason);
      },
    }),
    upgrade(server, request, handler, headers) {
      const data: SocketData = { handler, peer: new SocketPeer() };
      return (server as Server<SocketData>).upgrade(request, { data, headers });
    },
    async closeAll() {
      await Promise.all(
        [...open].map(async (peer) => {
          try {
            await peer.handler?.stop?.(peer);
          } finally {
            peer.close(GOING_AWAY, 'server shutting down');
          }
        }),
      );
    },
  };
}

export function isWebSocketUpgrade(request: Request): boolean {
  return request.method === 'GET' && (request.headers.get('upgrade') ?? '').toLowerCase().includes('websocket');
}
