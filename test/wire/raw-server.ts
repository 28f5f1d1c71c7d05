// A raw TCP server for the HTTP/1.1 client tests: each request's bytes go to a script that answers
// however the test needs (split writes, no length, closing at the wrong moment), which Bun.serve
// would not do.

import type { Socket, TCPSocketListener } from 'bun';

export interface RawConnection {
  socket: Socket<RawState>;
  /** Which connection this is, from 1. */
  number: number;
}

interface RawState {
  number: number;
  buffered: string;
}

export type RawHandler = (request: { head: string; body: string; index: number }, connection: RawConnection) => void;

export interface RawServer {
  url: string;
  connections(): number;
  requests: string[];
  listener: TCPSocketListener<RawState>;
  stop(): void;
}

/** Requests are read as text (the tests send small ones): head up to the blank line, then Content-Length bytes. */
export function startRawServer(handler: RawHandler): RawServer {
  let opened = 0;
  const requests: string[] = [];
  const listener = Bun.listen<RawState>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(socket) {
        opened++;
        socket.data = { number: opened, buffered: '' };
      },
      data(socket, chunk) {
        socket.data.buffered += chunk.toString('latin1');
        for (;;) {
          const end = socket.data.buffered.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = socket.data.buffered.slice(0, end);
          const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? '0');
          if (socket.data.buffered.length < end + 4 + length) return;
          const body = socket.data.buffered.slice(end + 4, end + 4 + length);
          socket.data.buffered = socket.data.buffered.slice(end + 4 + length);
          requests.push(head);
          handler({ head, body, index: requests.length - 1 }, { socket, number: socket.data.number });
        }
      },
    },
  });
  return {
    url: `http://127.0.0.1:${listener.port}`,
    connections: () => opened,
    requests,
    listener,
    stop: () => listener.stop(true),
  };
}

export function answer(body: string, extraHeaders = ''): string {
  return `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`;
}
