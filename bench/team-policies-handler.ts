// bun bench/team-policies-handler.ts — a team member's extra cost through the whole request handler
// (Elysia app, lifecycle runner, policies, accounting, journal), in process: no sockets and no wrk, so
// it moves far less than the load benches. The upstream is an injected fetch answering a canned OpenAI
// completion; 64 requests in flight. The figure is this thread's CPU per request, what a single-core
// Keyway's throughput is made of, for the operator key and for members of teams that are the seed's
// team with controls taken away (ARMS), each phase next to an operator phase.
//
//   ROUNDS=60 REQUESTS=3000 ARMS=seed,-log,-content,-budget,-tags,none bun bench/team-policies-handler.ts
//
// This VM's CPU time per request drifts by a third within a minute (a busy sibling thread, the heap's
// size), so each arm is compared with the operator phase beside it and the pairs' ratios are kept.
// VARIANTS=a,b sets globalThis.keywayBenchVariant before each round's phases, in turn: an experiment
// switched at run time (code reading that global) is compared inside one process, free of that drift.
// ONLY=operator or ONLY=<arm> runs one arm (a CPU profile of it, say).

import { readFileSync } from 'node:fs';
import { createApp } from '../core/http/app.ts';
import { addProviderKeys, call, flushUsage, OPERATOR_KEY, startTestGateway } from '../test/helpers/gateway.ts';
import { seedTeamForBench } from '../test/helpers/seed-team.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 40);
const REQUESTS = Number(process.env.REQUESTS ?? 3_000);
const ARMS = (process.env.ARMS ?? 'seed').split(',').filter(Boolean);
const VARIANTS = (process.env.VARIANTS ?? '').split(',').filter(Boolean);
const ONLY = process.env.ONLY;
const IN_FLIGHT = 64;
const threadCpu = (): number => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);

const completion = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-3.5-turbo-0125',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Here is the summary.' }, finish_reason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 200, completion_tokens: 20, total_tokens: 220 },
});
const upstream = (async () => new Response(completion, { status: 200, headers: { 'content-type': 'application/json' } })) as unknown as typeof fetch;

/** The seed's team (its budget raised so nothing is refused) without the controls an arm names. */
function teamFor(arm: string): Record<string, unknown> {
  const seed = seedTeamForBench({ openaiBudgetUsd: 1e6 });
  const permissions = seed.byok_permissions as { providers: Record<string, Record<string, unknown>>; usage_controls: Record<string, unknown> };
  const without = new Set(arm.split('-').slice(1));
  if (without.has('log')) permissions.usage_controls.log_all_requests = false;
  if (without.has('content')) permissions.usage_controls.block_sensitive_content = false;
  if (without.has('tags')) {
    permissions.usage_controls.require_project_tag = false;
    delete permissions.usage_controls.allowed_projects;
  }
  if (without.has('budget')) {
    for (const provider of Object.values(permissions.providers)) {
      delete provider.max_cost_per_day;
      delete provider.require_approval_above;
    }
  }
  return { ...seed, name: `${seed.name} ${arm}`, byok_permissions: arm === 'none' ? {} : permissions };
}

const gateway = await startTestGateway({
  env: { KEYWAY_OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', KEYWAY_UPSTREAM_ALLOW: '127.0.0.1', KEYWAY_USAGE_FLUSH_MS: '1000' },
  fetch: upstream,
  logLevel: 'warn',
  probes: false,
});
await addProviderKeys(gateway, [{ name: 'openai', api_key: 'sk-bench-upstream-key' }]);
const headersByArm = new Map<string, Record<string, string>>([['operator', { authorization: `Bearer ${OPERATOR_KEY}` }]]);
for (const arm of ARMS) {
  const team = (await (await call(gateway, 'POST', '/v1/teams', teamFor(arm))).json()) as { id: string; members: Array<{ api_key: string }> };
  headersByArm.set(arm, { authorization: `Bearer ${team.members[0]?.api_key}`, 'x-team-id': team.id, 'x-project-tag': 'project-a' });
}
const app = createApp(gateway.runtime);
const body = JSON.stringify({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] });

/** This thread's CPU per request over `requests` requests, IN_FLIGHT at a time. */
async function run(headers: Record<string, string>, requests: number): Promise<number> {
  let started = 0;
  const client = async (): Promise<void> => {
    while (started < requests) {
      started++;
      const request = new Request('http://127.0.0.1/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
      const response = await app.handle(request);
      if (response.status !== 200) throw new Error(`answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
    }
  };
  const start = threadCpu();
  await Promise.all(Array.from({ length: IN_FLIGHT }, client));
  return (threadCpu() - start) / 1000 / requests;
}

const median = (values: number[]): number => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;
const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

for (const headers of headersByArm.values()) await run(headers, 10_000);
await flushUsage(gateway);
const armNames = [...headersByArm.keys()].filter((arm) => ONLY === undefined || arm === ONLY || (arm === 'operator' && ONLY === undefined));
const variants = VARIANTS.length === 0 ? [''] : VARIANTS;
/** Per variant and arm: CPU per request of each round, and its ratio to the round's operator phase. */
const results = new Map(variants.map((variant) => [variant, new Map(armNames.map((arm) => [arm, { cpu: [] as number[], ratios: [] as number[] }]))]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const variant of variants) {
    (globalThis as { keywayBenchVariant?: string }).keywayBenchVariant = variant;
    const order = round % 2 === 0 ? [...armNames].reverse() : armNames;
    const cpu = new Map<string, number>();
    for (const arm of order) {
      cpu.set(arm, await run(headersByArm.get(arm) as Record<string, string>, REQUESTS));
      // Each phase starts with the usage queue empty: on a busy machine the writer thread can fall far
      // behind a phase, and past KEYWAY_USAGE_BUFFER_MAX the rows spill to the journal and are read
      // back on this thread (one seed run left 48,000 rows unwritten), a cost of the backlog, not of the arm.
      await flushUsage(gateway);
    }
    for (const [arm, figures] of results.get(variant) ?? []) {
      const own = cpu.get(arm) as number;
      figures.cpu.push(own);
      const operator = cpu.get('operator');
      if (operator !== undefined) figures.ratios.push(operator / own);
    }
  }
}
for (const [variant, arms] of results) {
  for (const [arm, figures] of arms) {
    const ratio = figures.ratios.length === 0 ? '' : `, operator / ${arm}: median of pairs ${(median(figures.ratios) * 100).toFixed(1)} %`;
    console.log(
      `${variant === '' ? '' : `${variant} `}${arm.padEnd(10)} ${mean(figures.cpu).toFixed(1)} µs CPU a request (mean of ${ROUNDS} × ${REQUESTS})${ratio}`,
    );
  }
}
await gateway.stop();
process.exit(0);
