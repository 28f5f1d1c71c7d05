// A hung worker under KEYWAY_WORKERS=2 (SIGSTOP stands for an endless loop or a deadlock): the kernel
// keeps handing it connections, so the primary must notice its silence. After one missed heartbeat
// or bus confirmation, the live worker's management writes stop waiting for it and its /ready names
// it; past KEYWAY_WORKER_TIMEOUT_MS the primary kills it with one error line, and its replacement
// replays its usage journal (each row booked once) and serves.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addOpenAIKey, alive, logLines, startTwoWorkers, until, type GatewayProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-WatchdogUpstreamKey00000000000001';
const OPERATOR_KEY = 'kw_op_WatchdogOperatorKey0123456789abcdef';
const WORKER_TIMEOUT_MS = 3_000;

let simulator: SimulatorHandle;
let gateway: GatewayProcess;
let directory = '';
let adminKey = '';
let victim: number | undefined;

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/**
 * One keep-alive HTTP/1.1 connection, so every request on it reaches the same worker: fresh
 * connections would go to the stopped one half the time, and wait with it.
 */
class KeptConnection {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly host: string,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiting?.();
    });
  }

  static open(url: string): Promise<KeptConnection> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => resolve(new KeptConnection(socket, `${hostname}:${port}`)));
      socket.once('error', reject);
    });
  }

  async request(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
    const lines = [`${method} ${path} HTTP/1.1`, `host: ${this.host}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
    if (body !== undefined) lines.push(`content-length: ${Buffer.byteLength(body)}`);
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
    for (;;) {
      const answer = this.takeAnswer();
      if (answer !== undefined) return answer;
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }

  /** A whole answer from the buffer (Content-Length or chunked), or undefined while it is still arriving. */
  private takeAnswer(): Answer | undefined {
    const headEnd = this.buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return undefined;
    const [statusLine = '', ...headerLines] = this.buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
    const headers = new Map(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
    let offset = headEnd + 4;
    let body = Buffer.alloc(0);
    if (headers.get('transfer-encoding') === 'chunked') {
      for (;;) {
        const sizeEnd = this.buffer.indexOf('\r\n', offset);
        if (sizeEnd < 0) return undefined;
        const size = Number.parseInt(this.buffer.subarray(offset, sizeEnd).toString('latin1'), 16);
        if (this.buffer.length < sizeEnd + 2 + size + 2) return undefined;
        body = Buffer.concat([body, this.buffer.subarray(sizeEnd + 2, sizeEnd + 2 + size)]);
        offset = sizeEnd + 2 + size + 2;
        if (size === 0) break;
      }
    } else {
      const length = Number(headers.get('content-length') ?? 0);
      if (this.buffer.length < offset + length) return undefined;
      body = this.buffer.subarray(offset, offset + length);
      offset += length;
    }
    this.buffer = this.buffer.subarray(offset);
    return { status: Number(statusLine.split(' ')[1]), headers, body: body.toString('utf8') };
  }
}

/** The pid each worker logged as it started listening, latest first. */
function workerPid(index: number): number | undefined {
  return logLines(gateway.stdout())
    .filter((line) => line.msg === `worker ${index} listening`)
    .at(-1)?.pid as number | undefined;
}

function bookedRequestIds(): string[] {
  const database = new Database(join(directory, 'keyway.db'), { readonly: true });
  try {
    return (database.query('SELECT request_id FROM usage_records').all() as Array<{ request_id: string }>).map((row) => row.request_id);
  } finally {
    database.close();
  }
}

/** A keep-alive connection that reached worker `worker`. */
async function connectionTo(worker: string): Promise<KeptConnection> {
  for (let attempt = 0; attempt < 60; attempt += 1) {
    const connection = await KeptConnection.open(gateway.url);
    const answer = await connection.request('GET', '/health');
    if (answer.headers.get('x-keyway-worker') === worker) return connection;
    connection.close();
  }
  throw new Error(`no connection reached worker ${worker}`);
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  ({ gateway, directory, adminKey } = await startTwoWorkers('keyway-watchdog', {
    operatorKey: OPERATOR_KEY,
    upstreams: { openai: simulator.url },
    // Rows stay in the workers' journals (no flush for a minute): the replacement's replay books the stopped one's.
    extra: { KEYWAY_USAGE_FLUSH_MS: '60000', KEYWAY_WORKER_TIMEOUT_MS: String(WORKER_TIMEOUT_MS) },
  }));
  await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
}, 60_000);

afterAll(async () => {
  // A stopped worker the primary did not kill (the watchdog missing) would outlive the test.
  if (victim !== undefined && alive(victim)) process.kill(victim, 'SIGKILL');
  await gateway?.stop('SIGKILL').catch(() => undefined);
  await Bun.sleep(200);
  await simulator?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('a worker that stops answering (KEYWAY_WORKERS=2)', () => {
  test('is not waited for after one miss, is named on /ready, and is killed and replaced past KEYWAY_WORKER_TIMEOUT_MS', async () => {
    // Each worker books a few rows in its journal.
    const served = new Map<string, string[]>([
      ['1', []],
      ['2', []],
    ]);
    const bothServed = await until(async () => {
      // A connection of its own, so the kernel may hand it to either worker.
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        keepalive: false,
        headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json', connection: 'close' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] }),
      });
      await response.arrayBuffer();
      expect(response.status).toBe(200);
      served.get(response.headers.get('x-keyway-worker') ?? '')?.push(response.headers.get('x-request-id') as string);
      return (served.get('2')?.length ?? 0) >= 2 && (served.get('1')?.length ?? 0) >= 1;
    }, 20_000);
    expect(bothServed).toBe(true);
    const stoppedRows = served.get('2') ?? [];
    expect(bookedRequestIds().filter((id) => stoppedRows.includes(id))).toEqual([]);

    const live = await connectionTo('1');
    victim = workerPid(2) as number;
    process.kill(victim, 'SIGSTOP');
    const stoppedAt = performance.now();

    // Management writes on the live worker: the first may wait for the stopped one's confirmation (a second at most), the others not.
    const durations: number[] = [];
    for (let index = 0; index < 4; index += 1) {
      const startedAt = performance.now();
      const created = await live.request(
        'POST',
        '/v1/teams',
        { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        JSON.stringify({
          name: `Watchdog Team ${index}`,
          byok_permissions: { providers: { openai: { enabled: true } } },
          members: [{ email: `member${index}@company.com`, role: 'developer', byok_access: true }],
        }),
      );
      expect(created.status).toBe(201);
      expect(created.headers.get('x-keyway-worker')).toBe('1');
      durations.push(performance.now() - startedAt);
    }
    console.log(`watchdog: management writes on the live worker after SIGSTOP took ${durations.map((duration) => Math.round(duration)).join(', ')} ms`);
    expect(durations[0]).toBeLessThan(1_500);
    for (const duration of durations.slice(1)) expect(duration).toBeLessThan(400);
    // Still before the timeout: the writes were quick because the stopped worker was not waited for, not because it was gone.
    expect(alive(victim)).toBe(true);
    const ready = await live.request('GET', '/ready');
    expect(ready.status).toBe(200);
    const readiness = JSON.parse(ready.body) as { status: string; degraded?: Array<{ check: string; detail: string }> };
    expect(readiness.status).toBe('ready');
    expect(readiness.degraded?.find((note) => note.check === 'workers')?.detail).toStartWith('worker 2 of this instance does not answer');
    expect(performance.now() - stoppedAt).toBeLessThan(WORKER_TIMEOUT_MS);
    live.close();

    // Past the timeout it is killed and replaced; the replacement replays its journal before it listens.
    expect(await until(() => (workerPid(2) ?? victim) !== victim, 20_000)).toBe(true);
    expect(alive(victim)).toBe(false);
    const killed = logLines(gateway.stdout()).filter((line) => typeof line.msg === 'string' && line.msg.startsWith('worker 2 did not answer for'));
    expect(killed).toHaveLength(1);
    expect(killed[0]).toMatchObject({ level: 'error', worker: 2, pid: victim });
    expect(killed[0]?.silentMs as number).toBeGreaterThanOrEqual(WORKER_TIMEOUT_MS);
    const booked = bookedRequestIds();
    for (const id of stoppedRows) expect(booked.filter((row) => row === id)).toHaveLength(1);

    // Both workers answer again, and the live one no longer names a silent sibling.
    const seen = new Set<string>();
    for (let attempt = 0; attempt < 60 && seen.size < 2; attempt += 1) {
      const response = await fetch(`${gateway.url}/health`, { keepalive: false, headers: { connection: 'close' }, signal: AbortSignal.timeout(5_000) });
      expect(response.status).toBe(200);
      seen.add(response.headers.get('x-keyway-worker') ?? '');
    }
    expect([...seen].sort()).toEqual(['1', '2']);
    const again = await connectionTo('1');
    const readyAgain = JSON.parse((await again.request('GET', '/ready')).body) as { degraded?: Array<{ check: string }> };
    again.close();
    expect(readyAgain.degraded?.some((note) => note.check === 'workers') ?? false).toBe(false);
  }, 60_000);
});
