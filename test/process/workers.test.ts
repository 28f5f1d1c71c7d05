// KEYWAY_WORKERS=2 as an operator runs it: one primary process, two workers on one port. Both
// workers serve; the first-start keys print once; a management write on one worker is in force on the
// other within a second; the team budget race across both overshoots nothing; a SIGKILLed worker is
// replaced and its usage journal replayed; SIGTERM drains every worker and writes every row.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { countOccurrences, FROM_SOURCE, logLines, runUntilExit, startTwoWorkers, until, type GatewayProcess } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-WorkersUpstreamKey000000000000001';
const OPERATOR_KEY = 'kw_op_WorkersOperatorKey0123456789abcdefgh';
const MODEL = 'gpt-4o-mini';
const MAX_TOKENS = 1000;
const FITS = 100;
const REQUESTS = 200;
const messages = [{ role: 'user', content: 'Write one short sentence about budgets.' }];

let simulator: SimulatorHandle;
let gateway: GatewayProcess;
let directory = '';
let adminKey = '';
let memberKey = '';
let stopped = false;

/** One request on a connection of its own, so the kernel may hand it to either worker. */
function send(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${gateway.url}${path}`, { ...init, keepalive: false, headers: { connection: 'close', ...(init.headers as Record<string, string>) } });
}

function authorized(key: string, body?: unknown): RequestInit {
  return {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  };
}

function usageRequestIds(): string[] {
  const database = new Database(join(directory, 'keyway.db'), { readonly: true });
  try {
    return (database.query('SELECT request_id FROM usage_records').all() as Array<{ request_id: string }>).map((row) => row.request_id);
  } finally {
    database.close();
  }
}

function teamSpendUsd(teamId: string): number {
  const database = new Database(join(directory, 'keyway.db'), { readonly: true });
  try {
    const row = database.query("SELECT coalesce(sum(cost_usd), 0) AS spent FROM usage_records WHERE team_id = ? AND provider = 'openai'").get(teamId) as {
      spent: number;
    };
    return row.spent;
  } finally {
    database.close();
  }
}

const journalFiles = (): string[] => readdirSync(join(directory, 'usage-journal')).filter((name) => name.endsWith('.jsonl'));

/** The pid each worker logged as it started listening, latest first. */
function workerPid(index: number): number | undefined {
  const lines = logLines(gateway.stdout()).filter((line) => line.msg === `worker ${index} listening`);
  return lines.at(-1)?.pid as number | undefined;
}

/** Which workers answered a management request made with the dashboard session, 200 each, over fresh connections. */
async function workersHonouringSession(session: { cookie: string; csrf: string }, attempts = 60): Promise<Set<string>> {
  const honoured = new Set<string>();
  for (let attempt = 0; attempt < attempts && honoured.size < 2; attempt += 1) {
    const response = await send('/v1/teams', { headers: { cookie: session.cookie, 'x-keyway-csrf': session.csrf } });
    await response.arrayBuffer();
    if (response.status === 200) honoured.add(response.headers.get('x-keyway-worker') ?? '');
    else throw new Error(`worker ${response.headers.get('x-keyway-worker')} refused the dashboard session: ${response.status}`);
  }
  return honoured;
}

let dashboardSession = { cookie: '', csrf: '' };

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  ({ gateway, directory, adminKey } = await startTwoWorkers('keyway-workers', {
    operatorKey: OPERATOR_KEY,
    upstreams: { openai: simulator.url },
    // Rows stay in the workers' journals (no flush for a minute): the kill and drain tests read where they went.
    extra: { KEYWAY_USAGE_FLUSH_MS: '60000' },
  }));
}, 60_000);

afterAll(async () => {
  if (!stopped) await gateway?.stop('SIGKILL').catch(() => undefined);
  // Workers of a killed primary drain and exit on their own; give them a moment before removing their files.
  await Bun.sleep(200);
  await simulator?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('KEYWAY_WORKERS=2', () => {
  test('both workers serve the one port; the first-start keys are printed once', async () => {
    const seen = new Set<string>();
    for (let attempt = 0; attempt < 60 && seen.size < 2; attempt += 1) {
      const response = await send('/health');
      expect(response.status).toBe(200);
      seen.add(response.headers.get('x-keyway-worker') ?? 'none');
    }
    expect([...seen].sort()).toEqual(['1', '2']);
    expect(adminKey).toStartWith('kw_ak_');
    expect(countOccurrences(gateway.stdout(), "Admin key of the 'default' account")).toBe(1);
    const listening = logLines(gateway.stdout()).filter((line) => typeof line.msg === 'string' && line.msg.startsWith('Keyway listening'));
    expect(listening).toHaveLength(1);
    expect(listening[0]?.workers).toBe(2);
  });

  test('a management write on one worker is in force on the other within a second', async () => {
    const added = await send('/v1/providers/keys', authorized(adminKey, { providers: [{ name: 'openai', api_key: UPSTREAM_KEY }] }));
    expect(added.status).toBe(201);
    const created = await send(
      '/v1/teams',
      authorized(adminKey, {
        name: 'Engineering Team',
        byok_permissions: { providers: { openai: { enabled: true } } },
        members: [{ email: 'developer@company.com', role: 'developer', byok_access: true }],
      }),
    );
    const writtenAt = performance.now();
    expect(created.status).toBe(201);
    const writer = created.headers.get('x-keyway-worker');
    memberKey = ((await created.json()) as { members: Array<{ api_key: string }> }).members[0]?.api_key ?? '';
    // The first answers from the other worker, within a second of the write: the new member's key works there.
    let otherStatus: number | undefined;
    await until(async () => {
      const response = await send('/v1/models', authorized(memberKey));
      await response.arrayBuffer();
      if (response.headers.get('x-keyway-worker') === writer) return false;
      otherStatus = response.status;
      return true;
    }, 1_000);
    expect(performance.now() - writtenAt).toBeLessThan(1_500);
    expect(otherStatus).toBe(200);
  });

  test('a dashboard session opened on one worker is honoured by both (a browser opens several connections)', async () => {
    await Bun.sleep(300);
    const response = await send('/dashboard/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: adminKey }),
    });
    expect(response.status).toBe(201);
    const body = (await response.json()) as { csrf_token: string };
    dashboardSession = { cookie: (response.headers.get('set-cookie') ?? '').split(';')[0] ?? '', csrf: body.csrf_token };
    expect([...(await workersHonouringSession(dashboardSession))].sort()).toEqual(['1', '2']);
  });

  /** Each worker refuses one request of a team whose cap holds none, which loads its tokenizer. */
  async function warmTokenizers(): Promise<void> {
    const created = await send(
      '/v1/teams',
      authorized(adminKey, {
        name: 'Tokenizer Warm-up Team',
        byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: 0.000001 } } },
        members: [{ email: 'warm@company.com', role: 'developer', byok_access: true }],
      }),
    );
    expect(created.status).toBe(201);
    const warmKey = ((await created.json()) as { members: Array<{ api_key: string }> }).members[0]?.api_key ?? '';
    await Bun.sleep(300);
    const refusedBy = new Set<string>();
    const warmed = await until(async () => {
      const response = await send('/v1/chat/completions', authorized(warmKey, { model: MODEL, messages, max_tokens: MAX_TOKENS }));
      await response.arrayBuffer();
      expect(response.status).toBe(402);
      refusedBy.add(response.headers.get('x-keyway-worker') ?? '');
      return refusedBy.size === 2;
    }, 30_000);
    expect(warmed).toBe(true);
  }

  test(`the budget race: ${REQUESTS} concurrent requests over both workers serve exactly what the cap holds`, async () => {
    // The worst case of one request, priced as the gateway prices it; the cap holds FITS of them and half another.
    const pricer = await startTestGateway({ probes: false, logLevel: 'warn' });
    const pricing = pricer.runtime.services.pricing;
    const request = { model: MODEL, messages, max_tokens: MAX_TOKENS } as ChatRequest;
    const worstNanos = worstCaseNanos(pricing, request, 'openai', MODEL, pricing.promptTokenBound(request)) as number;
    await pricer.stop();
    const capUsd = (FITS * worstNanos + Math.floor(worstNanos / 2)) / 1e9;
    const created = await send(
      '/v1/teams',
      authorized(adminKey, {
        name: 'Budgeted Team',
        byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: capUsd } } },
        members: [{ email: 'racer@company.com', role: 'developer', byok_access: true }],
      }),
    );
    expect(created.status).toBe(201);
    const team = (await created.json()) as { id: string; members: Array<{ api_key: string }> };
    const racerKey = team.members[0]?.api_key ?? '';
    // Both workers know the new key before the race starts.
    await Bun.sleep(300);
    // A refusal counts the prompt again with the provider's tokenizer, which each worker loads on first
    // use (seconds on a busy machine): loaded beforehand, so a request refused during the race retries
    // while every admitted one is still in flight (else an early one settles first and a later one fits).
    await warmTokenizers();
    const upstreamBefore = simulator.inferenceRequests().length;
    // Every upstream answer waits, so every reservation is made before any settles.
    simulator.setSticky({ kind: 'delay', delayMs: 1500 });
    const answers = await Promise.all(
      Array.from({ length: REQUESTS }, async (_, index) => {
        const response = await send('/v1/chat/completions', authorized(racerKey, { model: MODEL, messages, max_tokens: MAX_TOKENS, stream: index % 2 === 0 }));
        const text = await response.text();
        if (response.status !== 200 && response.status !== 402) console.log(`unexpected answer: ${response.status} ${text.slice(0, 300)}`);
        return { status: response.status, worker: response.headers.get('x-keyway-worker') };
      }),
    );
    simulator.setSticky(undefined);
    const served = answers.filter((answer) => answer.status === 200);
    expect(served.length).toBe(FITS);
    expect(answers.filter((answer) => answer.status === 402).length).toBe(REQUESTS - FITS);
    expect(simulator.inferenceRequests().length - upstreamBefore).toBe(FITS);
    // Both workers took part: with a budget each, they would have served FITS plus what the other got.
    const answeredBy = ['1', '2'].map((worker) => answers.filter((answer) => answer.worker === worker).length);
    expect(answeredBy.every((count) => count > 0)).toBe(true);
    const servedBy = ['1', '2'].map((worker) => served.filter((answer) => answer.worker === worker).length);
    console.log(
      `workers budget race: served ${FITS} of ${REQUESTS}; worker 1 answered ${answeredBy[0]} (served ${servedBy[0]}), worker 2 answered ${answeredBy[1]} (served ${servedBy[1]}); cap ${capUsd} $`,
    );
    (globalThis as { raceTeam?: { id: string; capUsd: number } }).raceTeam = { id: team.id, capUsd };
  }, 60_000);

  test('a SIGKILLed worker is replaced, and its replacement replays its journal', async () => {
    const requestIds = new Map<string, string[]>([
      ['1', []],
      ['2', []],
    ]);
    for (let index = 0; index < 30; index += 1) {
      const response = await send(
        '/v1/chat/completions',
        authorized(OPERATOR_KEY, { model: 'gpt-4o', messages: [{ role: 'user', content: `call ${index}` }] }),
      );
      await response.arrayBuffer();
      expect(response.status).toBe(200);
      requestIds.get(response.headers.get('x-keyway-worker') ?? '')?.push(response.headers.get('x-request-id') as string);
    }
    // Each worker's metrics carry its number, so a series never looks reset when a scrape reaches the other.
    const scrape = await send('/metrics', authorized(OPERATOR_KEY));
    const exposition = await scrape.text();
    expect(scrape.status).toBe(200);
    expect(exposition).toMatch(new RegExp(`^keyway_requests_total\\{worker="${scrape.headers.get('x-keyway-worker')}",`, 'm'));
    const killedWorkerRows = requestIds.get('2') ?? [];
    expect(killedWorkerRows.length).toBeGreaterThan(0);
    const before = usageRequestIds();
    expect(before.filter((id) => killedWorkerRows.includes(id))).toEqual([]);
    const victim = workerPid(2) as number;
    process.kill(victim, 'SIGKILL');
    expect(await until(() => (workerPid(2) ?? victim) !== victim, 15_000)).toBe(true);
    // The replacement replayed worker 2's rows before it listened; worker 1's are still only in its journal.
    const after = usageRequestIds();
    expect(killedWorkerRows.every((id) => after.includes(id))).toBe(true);
    expect(after.filter((id) => (requestIds.get('1') ?? []).includes(id))).toEqual([]);
    // And it serves.
    const seen = new Set<string>();
    for (let attempt = 0; attempt < 60 && !seen.has('2'); attempt += 1) seen.add((await send('/health')).headers.get('x-keyway-worker') ?? '');
    expect(seen.has('2')).toBe(true);
    // The new worker asked the other for the dashboard sessions opened before it started.
    await Bun.sleep(500);
    expect([...(await workersHonouringSession(dashboardSession))].sort()).toEqual(['1', '2']);
  }, 30_000);

  test('SIGTERM drains both workers: a request in flight is answered, every row is written once, exit 0', async () => {
    simulator.setSticky({ kind: 'delay', delayMs: 1000 });
    const inFlight = send('/v1/chat/completions', authorized(OPERATOR_KEY, { model: 'gpt-4o', messages: [{ role: 'user', content: 'drain me' }] }));
    await Bun.sleep(300);
    const code = await gateway.stop('SIGTERM', 30_000);
    stopped = true;
    simulator.setSticky(undefined);
    const response = await inFlight;
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    expect(code).toBe(0);
    const rows = usageRequestIds();
    expect(rows).toContain(response.headers.get('x-request-id') as string);
    expect(new Set(rows).size).toBe(rows.length);
    expect(journalFiles()).toEqual([]);
    const race = (globalThis as { raceTeam?: { id: string; capUsd: number } }).raceTeam;
    if (race !== undefined) {
      const spent = teamSpendUsd(race.id);
      expect(spent).toBeGreaterThan(0);
      expect(spent).toBeLessThanOrEqual(race.capUsd);
    }
  }, 45_000);
});

describe('KEYWAY_WORKERS refusals', () => {
  test('a value that is not a count stops the start in one line', async () => {
    const result = await runUntilExit({ command: FROM_SOURCE, cwd: tmpdir(), env: { KEYWAY_WORKERS: 'lots', KEYWAY_DATABASE_URL: ':memory:' } });
    expect(result.exitCode).toBe(1);
    expect(result.stderr.trim()).toBe('keyway: cannot start: KEYWAY_WORKERS must be auto or an integer between 1 and 256; got "lots".');
  });

  test('KEYWAY_WORKERS is read from the KEYWAY_CONFIG file too (an empty variable leaves it to the file)', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'keyway-workers-config-'));
    try {
      const configPath = join(scratch, 'keyway.json');
      writeFileSync(configPath, JSON.stringify({ KEYWAY_WORKERS: 'lots' }));
      const result = await runUntilExit({
        command: FROM_SOURCE,
        cwd: scratch,
        env: { KEYWAY_WORKERS: '', KEYWAY_CONFIG: configPath, KEYWAY_DATABASE_URL: ':memory:' },
      });
      expect(result.exitCode).toBe(1);
      expect(result.stderr.trim()).toBe('keyway: cannot start: KEYWAY_WORKERS must be auto or an integer between 1 and 256; got "lots".');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test("a start refused by the first worker stops the primary with that worker's message, once, and its exit code", async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'keyway-workers-refused-'));
    try {
      const databaseFile = join(scratch, 'keyway.db');
      mkdirSync(databaseFile);
      const result = await runUntilExit({
        command: FROM_SOURCE,
        cwd: scratch,
        env: { KEYWAY_WORKERS: '2', KEYWAY_DATA_DIR: join(scratch, 'data'), KEYWAY_DATABASE_URL: `file:${databaseFile}`, KEYWAY_ADMIN_KEY: OPERATOR_KEY },
      });
      expect(result.exitCode).toBe(1);
      expect(countOccurrences(result.stderr, 'which is a folder, not a database file')).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      // The second worker never started.
      expect(result.stdout).not.toContain('worker 2');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
