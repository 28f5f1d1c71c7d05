// docs/deployment.md's load-balancer example, run: two Keyway processes on one PostgreSQL database
// (created for this test) and one Redis (a key prefix of its own), nginx in front with the documented
// site rendered from the same template (scripts/deployment-examples.ts) with this test's ports, and
// requests through nginx with the official openai client. Each instance joins the balancer only
// once GET /ready answers 200, as a readiness probe would have it. Skipped, saying so, when nginx is
// not installed (.ci/run installs it) or when the test PostgreSQL or Redis does not answer.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import OpenAI from 'openai';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { worstCaseNanos } from '../../policies/cost-cap/worst-case.ts';
import { instanceEnvironment, nginxSite, renderDoc } from '../../scripts/deployment-examples.ts';
import { deletePrefix, randomPrefix, redisReachable, TEST_REDIS_URL } from '../counters-redis/redis.ts';
import { OPERATOR_KEY, startTestGateway } from '../helpers/gateway.ts';
import { FROM_SOURCE, startGatewayProcess, type GatewayProcess } from '../process/process-helpers.ts';
import { startOpenAISimulator, type OpenAISimulatorHandle } from '../simulators/openai.ts';
import { createTestDatabase, postgresReachable, type TestDatabase } from '../store-postgres/database.ts';

const OPENAI_KEY = 'sk-proj-LoadBalancerExampleOpenAIKey000001';
const MODEL = 'gpt-4o-mini';
const MAX_TOKENS = 1000;
const REQUESTS = 20;
// More than either instance's share of the requests (about half each): both must serve from the one
// budget, and budgets per instance would serve all twenty.
const FITS = 14;
const messages = [{ role: 'user' as const, content: 'Write one short sentence about load balancers.' }];

function nginxPath(): string | null {
  // Debian installs nginx in /usr/sbin, which a non-root PATH often lacks.
  return Bun.which('nginx', { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` });
}

const nginx = nginxPath();
const skipReason =
  nginx === null
    ? 'nginx is not installed (apt-get install nginx; .ci/run installs it)'
    : !(await postgresReachable())
      ? 'no PostgreSQL answers at 127.0.0.1:5432 (or KEYWAY_TEST_POSTGRES_URL)'
      : !(await redisReachable())
        ? `no Redis answers at ${TEST_REDIS_URL}`
        : undefined;
if (skipReason !== undefined) console.warn(`load-balancer example skipped: ${skipReason}`);

const scratch = mkdtempSync(join(tmpdir(), 'keyway-balancer-'));
const prefix = randomPrefix();
const instances: GatewayProcess[] = [];
let database: TestDatabase | undefined;
let openai: OpenAISimulatorHandle | undefined;
let nginxProcess: ReturnType<typeof Bun.spawn> | undefined;
let balancerUrl = '';
let memberKey = '';

function findFreePort(): number {
  const server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response() });
  const port = server.port as number;
  server.stop(true);
  return port;
}

/** The documented site wrapped in the little a stand-alone nginx needs: every path in the scratch folder. */
function writeNginxConfig(directory: string, listenPort: number, ports: number[]): string {
  mkdirSync(directory, { recursive: true });
  const site = nginxSite({ listen: `127.0.0.1:${listenPort}`, instances: ports.map((port) => ({ host: '127.0.0.1', port })), revealUpstream: true });
  writeFileSync(join(directory, 'keyway.conf'), site);
  const temporary = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `  ${name}_temp_path ${join(directory, name)};`).join('\n');
  const main = `worker_processes 1;
pid ${join(directory, 'nginx.pid')};
error_log ${join(directory, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
${temporary}
  include ${join(directory, 'keyway.conf')};
}
`;
  const path = join(directory, 'nginx.conf');
  writeFileSync(path, main);
  return path;
}

async function startInstance(name: string, port: number, masterKey: string): Promise<GatewayProcess> {
  const dataDirectory = join(scratch, name);
  mkdirSync(dataDirectory, { recursive: true });
  const environment = instanceEnvironment({
    host: '127.0.0.1',
    port,
    databaseUrl: (database as TestDatabase).url,
    redisUrl: TEST_REDIS_URL,
    redisPrefix: prefix,
    masterKey,
    adminKey: OPERATOR_KEY,
    dataDirectory,
    trustedProxies: '127.0.0.1',
  });
  // startGatewayProcess resolves once GET /ready answers 200: only then does the instance join nginx.
  return startGatewayProcess({
    command: FROM_SOURCE,
    cwd: dataDirectory,
    env: { ...environment, KEYWAY_OPENAI_BASE_URL: `${(openai as OpenAISimulatorHandle).url}/v1`, KEYWAY_USAGE_FLUSH_MS: '50' },
  });
}

async function management(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(answer)}`);
  return answer;
}

/** The worst case the cost cap reserves for one request, from the same pricing the instances use. */
async function worstCase(): Promise<number> {
  const gateway = await startTestGateway({ probes: false, logLevel: 'warn' });
  try {
    const pricing = gateway.runtime.services.pricing;
    const request = { model: MODEL, messages, max_tokens: MAX_TOKENS } as ChatRequest;
    return worstCaseNanos(pricing, request, 'openai', MODEL, pricing.promptTokenBound(request)) as number;
  } finally {
    await gateway.stop();
  }
}

let capUsd = 0;

/** Waits (at most 1 s, the product's propagation bound) until a member key written elsewhere is accepted here. */
async function inForceOn(url: string, key: string): Promise<void> {
  const deadline = performance.now() + 1_000;
  for (;;) {
    const status = await fetch(`${url}/v1/usage/me`, { headers: { authorization: `Bearer ${key}` } }).then((response) => response.status);
    if (status === 200) return;
    if (performance.now() > deadline) throw new Error(`the member key written through the first instance is not in force on the second after 1 s (${status})`);
    await Bun.sleep(20);
  }
}

beforeAll(async () => {
  if (skipReason !== undefined) return;
  const worstNanos = await worstCase();
  capUsd = (FITS * worstNanos + Math.floor(worstNanos / 2)) / 1e9;
  database = await createTestDatabase();
  openai = startOpenAISimulator({ apiKeys: [OPENAI_KEY] });
  const masterKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');
  const ports = [findFreePort(), findFreePort()];
  // The first instance migrates the new database; the second starts once it has, and the configuration
  // is then written through the first while both run: the cluster bus carries it to the second.
  const first = await startInstance('keyway-1', ports[0] as number, masterKey);
  instances.push(first);
  const second = await startInstance('keyway-2', ports[1] as number, masterKey);
  instances.push(second);
  await management(first.url, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: OPENAI_KEY }] });
  const team = await management(first.url, '/v1/teams', {
    name: 'Engineering Team',
    byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: capUsd } } },
    members: [{ email: 'developer@company.com', role: 'developer', byok_access: true }],
  });
  memberKey = String((team.members as Array<{ api_key: string }>)[0]?.api_key);
  await inForceOn(second.url, memberKey);

  const listenPort = findFreePort();
  const directory = join(scratch, 'nginx');
  const config = writeNginxConfig(directory, listenPort, ports);
  nginxProcess = Bun.spawn([nginx as string, '-p', directory, '-e', join(directory, 'error.log'), '-c', config, '-g', 'daemon off;'], {
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
  });
  balancerUrl = `http://127.0.0.1:${listenPort}`;
  const deadline = performance.now() + 10_000;
  while (
    (await fetch(`${balancerUrl}/ready`).then(
      (response) => response.status,
      () => 0,
    )) !== 200
  ) {
    if (performance.now() > deadline || nginxProcess.exitCode !== null) {
      throw new Error(`nginx did not answer /ready: ${readFileSync(join(directory, 'error.log'), 'utf8').slice(-1000)}`);
    }
    await Bun.sleep(50);
  }
}, 60_000);

afterAll(async () => {
  nginxProcess?.kill('SIGTERM');
  await nginxProcess?.exited;
  for (const instance of instances) await instance.stop('SIGTERM').catch(() => undefined);
  await openai?.stop();
  await database?.drop();
  if (skipReason === undefined) await deletePrefix(prefix);
  rmSync(scratch, { recursive: true, force: true });
});

function client(apiKey: string): OpenAI {
  // No retries in the client: whatever is retried, nginx retries.
  return new OpenAI({ apiKey, baseURL: `${balancerUrl}/v1`, maxRetries: 0 });
}

test('the load-balancer blocks in docs/deployment.md are what scripts/deployment-examples.ts renders', () => {
  const path = resolve(import.meta.dir, '../../docs/deployment.md');
  const text = readFileSync(path, 'utf8');
  expect(renderDoc(text)).toBe(text);
});

describe.skipIf(skipReason !== undefined)('two Keyway instances on one PostgreSQL and one Redis behind nginx', () => {
  test('both instances serve chat completions and streams through nginx', async () => {
    const operator = client(OPERATOR_KEY);
    const upstreams = new Set<string>();
    for (let index = 0; index < 6; index++) {
      const { data, response } = await operator.chat.completions.create({ model: MODEL, messages }).withResponse();
      expect(data.object).toBe('chat.completion');
      expect(typeof data.choices[0]?.message.content).toBe('string');
      upstreams.add(String(response.headers.get('x-keyway-upstream')));
    }
    expect(upstreams.size).toBe(2);
    const stream = await operator.chat.completions.create({ model: MODEL, messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage += chunk.usage?.total_tokens ?? 0;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(usage).toBeGreaterThan(0);
  });

  test(`a team budget set through one instance holds across both: ${REQUESTS} concurrent requests, exactly ${FITS} served`, async () => {
    const member = client(memberKey);
    const served = (openai as OpenAISimulatorHandle).inferenceRequests().length;
    // Every upstream answer waits, so every reservation is made before any settles.
    openai?.setSticky({ kind: 'delay', delayMs: 1_000 });
    const outcomes = await Promise.all(
      Array.from({ length: REQUESTS }, () =>
        member.chat.completions
          .create({ model: MODEL, messages, max_tokens: MAX_TOKENS })
          .withResponse()
          .then(
            ({ response }) => ({ status: 200, upstream: String(response.headers.get('x-keyway-upstream')) }),
            (error: unknown) => {
              if (!(error instanceof OpenAI.APIError)) throw error;
              return { status: error.status ?? 0, upstream: String(error.headers?.get('x-keyway-upstream')) };
            },
          ),
      ),
    );
    openai?.setSticky(undefined);
    const statuses = outcomes.map((outcome) => outcome.status);
    expect(statuses.filter((status) => status === 200).length).toBe(FITS);
    expect(statuses.filter((status) => status === 402).length).toBe(REQUESTS - FITS);
    expect((openai as OpenAISimulatorHandle).inferenceRequests().length - served).toBe(FITS);
    const servedBy = new Map<string, number>();
    for (const outcome of outcomes.filter((each) => each.status === 200)) servedBy.set(outcome.upstream, (servedBy.get(outcome.upstream) ?? 0) + 1);
    expect(servedBy.size).toBe(2);
    console.log(
      `load balancer: ${FITS} of ${REQUESTS} served against a ${capUsd} $ cap: ${[...servedBy].map(([upstream, count]) => `${count} by ${upstream}`).join(', ')}`,
    );
  }, 30_000);

  test('an instance that stops is skipped: every request still succeeds through nginx', async () => {
    const stopped = instances[1] as GatewayProcess;
    await stopped.stop('SIGTERM');
    expect(
      await fetch(`${stopped.url}/ready`).then(
        (response) => response.status,
        () => 0,
      ),
    ).toBe(0);
    const operator = client(OPERATOR_KEY);
    const upstreams = new Set<string>();
    for (let index = 0; index < 6; index++) {
      const { data, response } = await operator.chat.completions.create({ model: MODEL, messages }).withResponse();
      expect(data.object).toBe('chat.completion');
      // The header lists every address tried: the stopped one first when nginx retried.
      upstreams.add(String(response.headers.get('x-keyway-upstream')).split(', ').at(-1) ?? '');
    }
    expect([...upstreams]).toEqual([new URL((instances[0] as GatewayProcess).url).host]);
  }, 30_000);
});
