// bun bench/team-policies.ts — throughput at c=64 of a team member's requests with every policy of the
// seed's team on (provider and model allowlists, a daily budget with reservations, an approval
// threshold, project tags, content blocking), against the same load with the operator key (no team),
// interleaved, Keyway pinned to one core and wrk plus the stub to the other (see bench/README.md).
// The seed's budget ($100/day) would run out within seconds at this rate; it is raised so every
// request is still reserved and settled but none is refused. Target (issue 9): member ≥ 90% of operator.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { findFreePort, LOAD_CORE, PROXY_CORE, startPinned, stopProcess, waitForHttp } from './load/processes.ts';
import { seedTeamForBench } from '../test/helpers/seed-team.ts';

const ROOT = resolve(import.meta.dir, '..');
const OPERATOR_KEY = 'kw_op_benchadminkey0123456789abcdef';
const ROUNDS = 3;
const SECONDS = 6;
const MODEL = 'gpt-3.5-turbo';

async function admin(baseUrl: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(answer).slice(0, 300)}`);
  return answer;
}

function luaScript(path: string, key: string, headers: Record<string, string>): void {
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] });
  const lines = [
    `wrk.method = "POST"`,
    `wrk.body = ${JSON.stringify(body)}`,
    `wrk.headers["Content-Type"] = "application/json"`,
    `wrk.headers["Authorization"] = "Bearer ${key}"`,
  ];
  for (const [name, value] of Object.entries(headers)) lines.push(`wrk.headers["${name}"] = "${value}"`);
  writeFileSync(path, `${lines.join('\n')}\n`);
}

async function wrk(url: string, script: string, seconds: number): Promise<{ rate: number; non2xx: number }> {
  const child = Bun.spawn(['taskset', '-c', String(LOAD_CORE), 'wrk', '-t1', '-c64', `-d${seconds}s`, '-s', script, url], { stdout: 'pipe', stderr: 'pipe' });
  const text = await new Response(child.stdout).text();
  await child.exited;
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 'NaN');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? '0');
  return { rate, non2xx };
}

const median = (values: number[]): number => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;

const directory = mkdtempSync(join(tmpdir(), 'keyway-team-bench-'));
const stubPort = findFreePort();
const keywayPort = findFreePort();
const stub = startPinned(
  'stub',
  LOAD_CORE,
  [process.execPath, join(ROOT, 'bench', 'upstream-stub.ts')],
  { STUB_PORT: String(stubPort) },
  join(directory, 'stub.out'),
);
const keyway = startPinned(
  'keyway',
  PROXY_CORE,
  // KEYWAY_BENCH_WITHOUT=audit,… runs a build without those built-in plugins, to see what each costs.
  [process.execPath, join(ROOT, ...(process.env.KEYWAY_BENCH_WITHOUT ? ['bench', 'entrypoints', 'without-plugins.ts'] : ['plugins', 'main.ts']))],
  {
    KEYWAY_HOST: '127.0.0.1',
    KEYWAY_PORT: String(keywayPort),
    KEYWAY_DATA_DIR: directory,
    KEYWAY_DATABASE_URL: `file:${join(directory, 'keyway.db')}`,
    KEYWAY_ADMIN_KEY: OPERATOR_KEY,
    KEYWAY_LOG_LEVEL: 'warn',
    KEYWAY_OPENAI_BASE_URL: `http://127.0.0.1:${stubPort}/v1`,
  },
  join(directory, 'keyway.out'),
);
try {
  const baseUrl = `http://127.0.0.1:${keywayPort}`;
  const notReady = await waitForHttp(`${baseUrl}/ready`, keyway, 30_000);
  if (notReady !== undefined) throw new Error(notReady);
  await admin(baseUrl, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: 'sk-bench-upstream-key' }] });
  const team = await admin(baseUrl, '/v1/teams', seedTeamForBench({ openaiBudgetUsd: 1_000_000 }));
  const memberKey = String((team.members as Array<{ api_key: string }>)[0]?.api_key);
  const operatorScript = join(directory, 'operator.lua');
  const memberScript = join(directory, 'member.lua');
  luaScript(operatorScript, OPERATOR_KEY, {});
  luaScript(memberScript, memberKey, { 'X-Team-ID': String(team.id), 'X-Project-Tag': 'project-a' });
  const url = `${baseUrl}/v1/chat/completions`;
  await wrk(url, operatorScript, 2);
  await wrk(url, memberScript, 2);
  const operator: number[] = [];
  const member: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, script, rates] of [
      ['operator key, no team', operatorScript, operator],
      ['member key, seed team policies', memberScript, member],
    ] as const) {
      const { rate, non2xx } = await wrk(url, script, SECONDS);
      if (non2xx > 0) throw new Error(`${name}: ${non2xx} requests were not answered 200`);
      rates.push(rate);
      console.log(`round ${round} ${name.padEnd(32)} ${Math.round(rate)} req/s`);
    }
  }
  const ratio = median(member) / median(operator);
  console.log(
    `median: operator ${Math.round(median(operator))} req/s, member ${Math.round(median(member))} req/s → ${(ratio * 100).toFixed(1)}% (target ≥ 90%: ${ratio >= 0.9 ? 'PASS' : 'FAIL'})`,
  );
} finally {
  await stopProcess(keyway);
  await stopProcess(stub);
  rmSync(directory, { recursive: true, force: true });
}
