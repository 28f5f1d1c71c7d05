// What the focused load benches share (team-policies, usage-writes, plugin-cost, master-key-rewrap):
// the upstream stub and Keyway builds pinned like bench/load.ts pins them, wrk at c=64 on the load
// core, and interleaved rounds compared by their medians.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { seedTeamForBench } from '../../test/helpers/seed-team.ts';
import { findFreePort, LOAD_CORE, PROXY_CORE, type PinnedProcess, pinnedCommand, startPinned, stopProcess, waitForHttp } from './processes.ts';

export const ROOT = resolve(import.meta.dir, '..', '..');
export { ADMIN_API_KEY as BENCH_OPERATOR_KEY, UPSTREAM_API_KEY as BENCH_UPSTREAM_KEY } from './requests.ts';
import { ADMIN_API_KEY as BENCH_OPERATOR_KEY, UPSTREAM_API_KEY as BENCH_UPSTREAM_KEY } from './requests.ts';

export interface WrkResult {
  rate: number;
  p99Ms: number;
  non2xx: number;
}

/** wrk, one thread, 64 connections, on the load core; the rate, the p99 latency and the non-2xx count. */
export async function runWrk(url: string, script: string, seconds: number): Promise<WrkResult> {
  const child = Bun.spawn([...pinnedCommand(LOAD_CORE, ['wrk']), '-t1', '-c64', `-d${seconds}s`, '--latency', '-s', script, url], {
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const text = await new Response(child.stdout).text();
  await child.exited;
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 'NaN');
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(text);
  const p99Ms = p99 === null ? Number.NaN : Number(p99[1]) * (p99[2] === 'us' ? 0.001 : p99[2] === 's' ? 1000 : 1);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? '0');
  return { rate, p99Ms, non2xx };
}

export const median = (values: number[]): number => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;
export const spread = (values: number[]): string => `${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))}`;

/** A wrk script posting one JSON body with a bearer key and optional extra headers. */
export function writeWrkScript(path: string, body: unknown, key: string, headers: Record<string, string> = {}): void {
  const lines = [
    `wrk.method = "POST"`,
    `wrk.body = ${JSON.stringify(JSON.stringify(body))}`,
    `wrk.headers["Content-Type"] = "application/json"`,
    `wrk.headers["Authorization"] = "Bearer ${key}"`,
  ];
  for (const [name, value] of Object.entries(headers)) lines.push(`wrk.headers["${name}"] = "${value}"`);
  writeFileSync(path, `${lines.join('\n')}\n`);
}

export function startStub(directory: string): { process: PinnedProcess; port: number } {
  const port = findFreePort();
  const process_ = startPinned(
    'stub',
    LOAD_CORE,
    [process.execPath, join(ROOT, 'bench', 'upstream-stub.ts')],
    { STUB_PORT: String(port) },
    join(directory, 'stub.out'),
  );
  return { process: process_, port };
}

/** What a bench Keyway runs with: its port and data folder, the bench operator key, the stub as OpenAI. */
export function benchKeywayEnvironment(dataDirectory: string, port: number, stubPort: number, logLevel = 'warn'): Record<string, string> {
  return {
    KEYWAY_HOST: '127.0.0.1',
    KEYWAY_PORT: String(port),
    KEYWAY_DATA_DIR: dataDirectory,
    KEYWAY_DATABASE_URL: `file:${join(dataDirectory, 'keyway.db')}`,
    KEYWAY_ADMIN_KEY: BENCH_OPERATOR_KEY,
    KEYWAY_LOG_LEVEL: logLevel,
    KEYWAY_OPENAI_BASE_URL: `http://127.0.0.1:${stubPort}/v1`,
  };
}

/** A Keyway build (an entry point) pinned to the proxy core, on its own data folder, its OpenAI upstream the stub. */
export function startKeyway(
  name: string,
  entrypoint: string,
  dataDirectory: string,
  stubPort: number,
  env: Record<string, string> = {},
): { process: PinnedProcess; url: string } {
  mkdirSync(dataDirectory, { recursive: true });
  const port = findFreePort();
  const process_ = startPinned(
    name,
    PROXY_CORE,
    [process.execPath, entrypoint],
    { ...benchKeywayEnvironment(dataDirectory, port, stubPort), ...env },
    join(dataDirectory, `${name}.out`),
  );
  return { process: process_, url: `http://127.0.0.1:${port}` };
}

/** Posts a management call with the operator key; throws with the answer when it is not a 2xx. */
export async function operatorCall(baseUrl: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BENCH_OPERATOR_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(answer).slice(0, 300)}`);
  return answer;
}

export interface Build {
  name: string;
  /** The entry point: plugins/main.ts or a bench build in bench/entrypoints/. */
  entrypoint: string;
  env: Record<string, string>;
}

export interface BuildResult extends Build {
  rates: number[];
  p99s: number[];
}

/**
 * Starts every build (with the stub's OpenAI key added), warms each up, then runs `rounds` rounds of
 * `seconds` each, alternating the order every round, and prints each round and the medians.
 */
export async function compareBuilds(directory: string, builds: readonly Build[], rounds: number, seconds: number): Promise<BuildResult[]> {
  const stub = startStub(directory);
  const started = builds.map((build, index) => startKeyway(`keyway-${index}`, build.entrypoint, join(directory, `keyway-${index}`), stub.port, build.env));
  const results: BuildResult[] = builds.map((build) => ({ ...build, rates: [], p99s: [] }));
  try {
    const script = join(directory, 'chat.lua');
    writeWrkScript(script, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] }, BENCH_OPERATOR_KEY);
    for (const [index, build] of builds.entries()) {
      const keyway = started[index] as { process: PinnedProcess; url: string };
      const notReady = await waitForHttp(`${keyway.url}/ready`, keyway.process, 30_000);
      if (notReady !== undefined) throw new Error(`${build.name}: ${notReady}`);
      await operatorCall(keyway.url, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: BENCH_UPSTREAM_KEY }] });
      await runWrk(`${keyway.url}/v1/chat/completions`, script, 2);
    }
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 0 ? [...results.keys()].reverse() : [...results.keys()];
      for (const index of order) {
        const result = results[index] as BuildResult;
        const { rate, p99Ms, non2xx } = await runWrk(`${(started[index] as { url: string }).url}/v1/chat/completions`, script, seconds);
        if (non2xx > 0) throw new Error(`${result.name}: ${non2xx} requests were not answered 200`);
        result.rates.push(rate);
        result.p99s.push(p99Ms);
        console.log(`round ${round} ${result.name.padEnd(40)} ${Math.round(rate)} req/s, p99 ${p99Ms.toFixed(2)} ms`);
      }
    }
    for (const result of results) {
      console.log(
        `${result.name.padEnd(40)} median ${Math.round(median(result.rates))} req/s (rounds ${spread(result.rates)}), p99 median ${median(result.p99s).toFixed(2)} ms`,
      );
    }
    return results;
  } finally {
    for (const keyway of started) await stopProcess(keyway.process);
    await stopProcess(stub.process);
  }
}

/** Where the operator's and a team member's wrk scripts are written. */
export interface TeamScripts {
  operator: string;
  member: string;
}

/**
 * Readies a started Keyway for the team benches: the stub's OpenAI key, the seed's team (its daily
 * budget raised so nothing is refused, but every request is reserved and settled), and the wrk scripts
 * posting `body` with the operator key and with a member's key, team and project headers.
 */
export async function prepareTeamScripts(baseUrl: string, body: unknown, scripts: TeamScripts): Promise<Record<string, unknown>> {
  await operatorCall(baseUrl, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: BENCH_UPSTREAM_KEY }] });
  const team = await operatorCall(baseUrl, '/v1/teams', seedTeamForBench({ openaiBudgetUsd: 1_000_000 }));
  const memberKey = String((team.members as Array<{ api_key: string }>)[0]?.api_key);
  writeWrkScript(scripts.operator, body, BENCH_OPERATOR_KEY);
  writeWrkScript(scripts.member, body, memberKey, { 'X-Team-ID': String(team.id), 'X-Project-Tag': 'project-a' });
  return team;
}
