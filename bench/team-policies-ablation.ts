// bun bench/team-policies-ablation.ts — where the seed team member's extra cost goes. One Keyway, one
// team per arm, each the seed's team with one control taken away (and one with none at all), measured
// at c=64 against the operator key, interleaved, by the load bench's method (Keyway pinned to one core,
// wrk and the stub to the other). Prints, per arm, the median req/s and Keyway's CPU per request
// (all threads and the main thread) and what each control costs: its arm's CPU below the full team's.
//
//   KEYWAY_BENCH_ROUNDS=6 KEYWAY_BENCH_SECONDS=3 bun bench/team-policies-ablation.ts
//
// KEYWAY_BENCH_ENTRYPOINT runs another build (bench/entrypoints/no-usage-writes.ts, say, with
// KEYWAY_USAGE_JOURNAL=off in the environment: what is left when no usage is written).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedTeamForBench } from '../test/helpers/seed-team.ts';
import { cpuByThread, cpuPerRequest } from './load/cpu-time.ts';
import { BENCH_OPERATOR_KEY, BENCH_UPSTREAM_KEY, median, operatorCall, ROOT, runWrk, startKeyway, startStub, writeWrkScript } from './load/pinned-keyway.ts';
import { stopProcess, waitForHttp } from './load/processes.ts';

const ROUNDS = Number(process.env.KEYWAY_BENCH_ROUNDS ?? 6);
const SECONDS = Number(process.env.KEYWAY_BENCH_SECONDS ?? 3);
const BODY = { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] };

type Team = ReturnType<typeof seedTeamForBench>;
type Permissions = Team['byok_permissions'];

/** Each arm: the seed's team (budget raised so nothing is refused) changed by one edit. */
const ARMS: Array<{ name: string; edit: (permissions: Permissions) => Record<string, unknown> }> = [
  { name: 'seed team (every control)', edit: (permissions) => permissions },
  { name: 'without log_all_requests', edit: (permissions) => ({ ...permissions, usage_controls: { ...permissions.usage_controls, log_all_requests: false } }) },
  {
    name: 'without block_sensitive_content',
    edit: (permissions) => ({ ...permissions, usage_controls: { ...permissions.usage_controls, block_sensitive_content: false } }),
  },
  {
    name: 'without project tags',
    edit: (permissions) => ({ ...permissions, usage_controls: { ...permissions.usage_controls, require_project_tag: false, allowed_projects: undefined } }),
  },
  {
    name: 'without budget and approval',
    edit: (permissions) => {
      const { max_cost_per_day: _budget, require_approval_above: _approval, ...openai } = permissions.providers.openai;
      const { max_cost_per_day: _other, ...anthropic } = permissions.providers.anthropic;
      return { ...permissions, providers: { ...permissions.providers, openai, anthropic } };
    },
  },
  { name: 'a team without controls', edit: () => ({}) },
];

const directory = mkdtempSync(join(tmpdir(), 'keyway-team-ablation-'));
const stub = startStub(directory);
const entrypoint = process.env.KEYWAY_BENCH_ENTRYPOINT ?? join(ROOT, 'plugins', 'main.ts');
const keyway = startKeyway('keyway', entrypoint, join(directory, 'keyway'), stub.port);
try {
  const notReady = await waitForHttp(`${keyway.url}/ready`, keyway.process, 30_000);
  if (notReady !== undefined) throw new Error(notReady);
  await operatorCall(keyway.url, '/v1/providers/keys', { providers: [{ name: 'openai', api_key: BENCH_UPSTREAM_KEY }] });
  const url = `${keyway.url}/v1/chat/completions`;
  const arms = [{ name: 'operator key, no team', script: join(directory, 'operator.lua') }];
  writeWrkScript(arms[0]!.script, BODY, BENCH_OPERATOR_KEY);
  for (const [index, arm] of ARMS.entries()) {
    const seed = seedTeamForBench({ openaiBudgetUsd: 1_000_000 });
    const team = await operatorCall(keyway.url, '/v1/teams', { ...seed, name: `${seed.name} ${index}`, byok_permissions: arm.edit(seed.byok_permissions) });
    const memberKey = String((team.members as Array<{ api_key: string }>)[0]?.api_key);
    const script = join(directory, `arm-${index}.lua`);
    writeWrkScript(script, BODY, memberKey, { 'X-Team-ID': String(team.id), 'X-Project-Tag': 'project-a' });
    arms.push({ name: arm.name, script });
  }
  for (const arm of arms) await runWrk(url, arm.script, 2);
  const results = arms.map(() => ({ rates: [] as number[], cpu: [] as number[], main: [] as number[] }));
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 0 ? [...arms.keys()].reverse() : [...arms.keys()];
    for (const index of order) {
      const before = cpuByThread(keyway.process.pid);
      const { rate, non2xx } = await runWrk(url, (arms[index] as { script: string }).script, SECONDS);
      if (non2xx > 0) throw new Error(`${arms[index]?.name}: ${non2xx} requests were not answered 200`);
      const after = cpuByThread(keyway.process.pid);
      const cpu = cpuPerRequest(before, after, rate * SECONDS);
      const main = ((after.get('main') ?? 0) - (before.get('main') ?? 0)) / 1000 / (rate * SECONDS);
      const result = results[index] as (typeof results)[number];
      result.rates.push(rate);
      result.cpu.push(cpu.total);
      result.main.push(main);
    }
    console.log(`round ${round} done`);
  }
  const full = results[1] as (typeof results)[number];
  const operator = results[0] as (typeof results)[number];
  for (const [index, arm] of arms.entries()) {
    const result = results[index] as (typeof results)[number];
    const saved = index >= 2 ? `, this control costs ${(median(full.cpu) - median(result.cpu)).toFixed(1)} µs` : '';
    console.log(
      `${arm.name.padEnd(34)} ${String(Math.round(median(result.rates))).padStart(6)} req/s (${((median(result.rates) / median(operator.rates)) * 100).toFixed(1)}% of operator), CPU ${median(result.cpu).toFixed(1)} µs (main ${median(result.main).toFixed(1)})${saved}`,
    );
  }
} finally {
  await stopProcess(keyway.process);
  await stopProcess(stub.process);
  rmSync(directory, { recursive: true, force: true });
}
