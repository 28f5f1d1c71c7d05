// KEYWAY_WORKERS=2: PATCHes of one team at once, on fresh connections the kernel hands to either worker.
// QA (qa-teams M1): each PATCH read the team, merged its patch and wrote the whole result back, so the
// last writer undid the others: 6 PATCHes at once, each capping one provider (`max_cost_per_day`), all
// answered 200 with their cap merged, and 5 of 30 caps in 5 rounds were not stored. Now a PATCH writes
// only if the team is still the one it merged into, and merges again into the newer one otherwise.

import { expect, test } from 'bun:test';
import { twoWorkersForSuite } from './process-helpers.ts';

// Management calls only: no upstream is called.
const { send } = twoWorkersForSuite('keyway-workers-team-patch', 'kw_op_WorkersTeamPatchOperator0123456789abc');

const PROVIDERS = ['openai', 'anthropic', 'google', 'cohere', 'mistral', 'groq', 'perplexity', 'deepseek'];
const ROUNDS = 5;

test(`PATCHes of one team at once each stay merged, ${ROUNDS} rounds`, async () => {
  const workers = new Set<string>();
  for (let round = 0; round < ROUNDS; round += 1) {
    const created = await send('POST', '/v1/teams', { name: `Patched at once ${round}` });
    expect(created.status).toBe(201);
    const path = `/v1/teams/${String(created.body.id)}`;
    const answers = await Promise.all(
      PROVIDERS.map((provider, index) => send('PATCH', path, { byok_permissions: { providers: { [provider]: { max_cost_per_day: index + 1 } } } })),
    );
    for (const answer of answers) workers.add(answer.worker);
    expect({ round, statuses: answers.map((answer) => answer.status) }).toEqual({ round, statuses: PROVIDERS.map(() => 200) });
    const stored = (await send('GET', path)).body.byok_permissions as { providers: Record<string, { max_cost_per_day?: number }> };
    const caps = Object.fromEntries(Object.entries(stored.providers).map(([provider, rules]) => [provider, rules.max_cost_per_day]));
    expect({ round, caps }).toEqual({ round, caps: Object.fromEntries(PROVIDERS.map((provider, index) => [provider, index + 1])) });
  }
  // Both workers took calls: the race was between processes, not only within one.
  expect([...workers].sort()).toEqual(['1', '2']);
}, 120_000);
