// KEYWAY_WORKERS=2: the same provider key added by concurrent calls on fresh connections (the kernel
// hands them to either worker) is stored once. One call answers 201, every other 409 `conflict` naming
// the stored key, and the account (or the platform) lists the key once. QA17: each worker checked its
// own snapshot, so two workers each stored it (201, 201, 409 × 8; two copies of one fingerprint in 4
// of 4 rounds). The store's unique index on live keys now decides, whichever worker asks.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { freshAnswer, startTwoWorkers, type GatewayProcess, type WorkerAnswer } from './process-helpers.ts';

const OPERATOR_KEY = 'kw_op_WorkersDuplicateKeysOperator012345678';
const ROUNDS = 4;
const CALLS = 10;
const keyOf = (owner: string, round: number) => `sk-proj-WorkersDuplicate${owner}Round${round}000000000000000`.slice(0, 48);

let openai: SimulatorHandle;
let gateway: GatewayProcess;
let directory = '';
let adminKey = '';

/** One request on a connection of its own. */
const send = (key: string, method: string, path: string, body?: unknown): Promise<WorkerAnswer> => freshAnswer(`${gateway.url}${path}`, key, method, body);

beforeAll(async () => {
  const keys = ['Account', 'Platform'].flatMap((owner) => Array.from({ length: ROUNDS }, (_, round) => keyOf(owner, round)));
  openai = startOpenAISimulator({ apiKeys: keys });
  ({ gateway, directory, adminKey } = await startTwoWorkers('keyway-workers-duplicate-keys', { operatorKey: OPERATOR_KEY, upstreams: { openai: openai.url } }));
}, 60_000);

afterAll(async () => {
  await gateway?.stop('SIGTERM').catch(() => undefined);
  await openai?.stop();
  rmSync(directory, { recursive: true, force: true });
});

const owners = [
  { owner: 'Account', path: '/v1/providers/keys', list: '/v1/providers', key: () => adminKey },
  { owner: 'Platform', path: '/v1/platform/keys', list: '/v1/platform/keys', key: () => OPERATOR_KEY },
];

describe('KEYWAY_WORKERS=2: the same provider key added by concurrent calls', () => {
  for (const { owner, path, list, key } of owners) {
    test(`${path}: stored once, one 201 and a 409 naming it for every other call, ${ROUNDS} rounds`, async () => {
      const workers = new Set<string>();
      for (let round = 0; round < ROUNDS; round += 1) {
        const apiKey = keyOf(owner, round);
        const answers = await Promise.all(Array.from({ length: CALLS }, () => send(key(), 'POST', path, { providers: [{ name: 'openai', api_key: apiKey }] })));
        for (const answer of answers) workers.add(answer.worker);
        const created = answers.filter((answer) => answer.status === 201);
        expect({ round, statuses: answers.map((answer) => answer.status).sort() }).toEqual({
          round,
          statuses: [201, ...Array<number>(CALLS - 1).fill(409)],
        });
        const storedId = String((created[0]?.body.providers as Array<Record<string, unknown>>)[0]?.key_id);
        for (const refused of answers.filter((answer) => answer.status === 409)) {
          const error = refused.body.error as Record<string, unknown>;
          expect({ code: error.code, param: error.param }).toEqual({ code: 'conflict', param: 'providers[0].api_key' });
          expect(String(error.message)).toBe(`providers[0]: this openai key is already stored as ${storedId}.`);
        }
        const listed = (await send(key(), 'GET', list)).body.providers as Array<Record<string, unknown>>;
        const fingerprint = listed.find((entry) => entry.key_id === storedId)?.fingerprint;
        expect(listed.filter((entry) => entry.fingerprint === fingerprint).map((entry) => entry.key_id)).toEqual([storedId]);
      }
      // Both workers took calls: the race was between processes, not only within one.
      expect([...workers].sort()).toEqual(['1', '2']);
    }, 60_000);
  }
});
