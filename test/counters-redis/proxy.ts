// A TCP proxy in front of the test Redis that a test can cut and restore: an outage of "Redis" as a
// gateway sees it, without touching the real server other tests share.

import type { Socket, TCPSocketListener } from 'bun';

interface ClientData {
  peer: Socket<Socket<ClientData>> | undefined;
  pending: Uint8Array[];
}

export interface RedisProxy {
  url: string;
  /** Closes every connection and stops listening: the gateway sees Redis go away. */
  cut(): void;
  /** Listens again on the same port. */
  restore(): void;
}

export function startRedisProxy(target: { hostname: string; port: number }): RedisProxy {
  const open = new Set<Socket<unknown>>();
  let listener: TCPSocketListener<ClientData> | undefined;
  const listen = (port: number): TCPSocketListener<ClientData> =>
    Bun.listen<ClientData>({
      hostname: '127.0.0.1',
      port,
      socket: {
        open(client) {
          client.data = { peer: undefined, pending: [] };
          open.add(client as Socket<unknown>);
          void Bun.connect<Socket<ClientData>>({
            ...target,
            socket: {
              open(upstream) {
                upstream.data = client;
                open.add(upstream as Socket<unknown>);
                client.data.peer = upstream;
                for (const chunk of client.data.pending.splice(0)) upstream.write(chunk);
              },
              data(upstream, chunk) {
                upstream.data.write(chunk);
              },
              close(upstream) {
                upstream.data.end();
              },
              error() {},
            },
          }).catch(() => client.end());
        },
        data(client, chunk) {
          if (client.data.peer !== undefined) client.data.peer.write(chunk);
          else client.data.pending.push(new Uint8Array(chunk));
        },
        close(client) {
          client.data.peer?.end();
        },
        error() {},
      },
    });
  listener = listen(0);
  const port = listener.port;
  return {
    url: `redis://127.0.0.1:${port}`,
    cut() {
      listener?.stop(true);
      listener = undefined;
      for (const socket of open) socket.end();
      open.clear();
    },
    restore() {
      if (listener === undefined) listener = listen(port);
    },
  };
}
