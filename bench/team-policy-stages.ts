// bun bench/team-policy-stages.ts — in-process cost of the lifecycle stages and the account stage for a
// member of the seed's team (every policy on) against the operator key, 20,000 requests each after a
// warm-up, on a real runtime (test/helpers/gateway.ts); SCAN=1 turns the team's content blocking on.

import { startTestGateway, OPERATOR_KEY, addProviderKeys, call } from '../test/helpers/gateway.ts';
import { createRequestContext } from '../core/lifecycle/context.ts';
import { authenticate } from '../core/credentials/authenticate.ts';
import type { ChatRequest } from '../core/spec/vocabulary.ts';
import { seedTeamForBench } from '../test/helpers/seed-team.ts';
import { readFileSync } from 'node:fs';

/** This thread's CPU time in ns (Linux): steadier than wall time on a shared machine. */
const threadCpu = (): number => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);

const gateway = await startTestGateway({
  env: { KEYWAY_OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', KEYWAY_UPSTREAM_ALLOW: '127.0.0.1' },
  logLevel: 'warn',
  probes: false,
});
await addProviderKeys(gateway, [{ name: 'openai', api_key: 'sk-bench-upstream-key' }]);
const team = (await (
  await call(gateway, 'POST', '/v1/teams', seedTeamForBench({ openaiBudgetUsd: 1e6, blockSensitiveContent: process.env.SCAN === '1' }))
).json()) as { id: string; members: Array<{ api_key: string }> };
const runtime = gateway.runtime;
const body: ChatRequest = { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'Summarise the release notes. '.repeat(30) }] };
// What the server read: an audit fingerprint hashes it (RequestContext.bodyText).
const bodyText = JSON.stringify(body);
function time(label: string, key: string, headers: Record<string, string>) {
  const h = new Headers({ authorization: `Bearer ${key}`, ...headers });
  const request = new Request('http://x/v1/chat/completions', { method: 'POST', headers: h });
  const principal = authenticate(runtime.snapshots, h);
  const run = async (n: number) => {
    const start = performance.now();
    const startCpu = threadCpu();
    for (let i = 0; i < n; i++) {
      const context = createRequestContext(`r${i}`, request, principal, 'chat', () => '127.0.0.1', structuredClone(body));
      context.bodyText = bodyText;
      const pending = runtime.lifecycle.runStagesBeforeCall(context);
      if (pending !== undefined) await pending;
      context.served = { provider: 'openai', model: 'gpt-3.5-turbo', keyId: context.candidates[0]!.key.id, owner: 'account' };
      runtime.accountant.account(context, {
        status: 200,
        usage: { inputTokens: 200, outputTokens: 20, totalTokens: 220, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
        finishReason: undefined,
        error: undefined,
        streamed: false,
      });
    }
    return { wall: ((performance.now() - start) * 1000) / n, cpu: (threadCpu() - startCpu) / 1000 / n };
  };
  return run(3000)
    .then(() => run(20000))
    .then(({ wall, cpu }) => {
      console.log(`${label}: ${wall.toFixed(2)} µs per request, CPU ${cpu.toFixed(2)} µs (stages + account, incl. structuredClone of the body)`);
      return cpu;
    });
}
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const operatorCpu: number[] = [];
const memberCpu: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  operatorCpu.push(await time('operator', OPERATOR_KEY, {}));
  memberCpu.push(await time('member  ', team.members[0]!.api_key, { 'x-team-id': team.id, 'x-project-tag': 'project-a' }));
}
const median = (values: number[]) => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;
console.log(
  `median CPU: operator ${median(operatorCpu).toFixed(2)} µs, member ${median(memberCpu).toFixed(2)} µs → member extras ${(median(memberCpu) - median(operatorCpu)).toFixed(2)} µs`,
);
await gateway.stop();
process.exit(0);
