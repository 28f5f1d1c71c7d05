// POST /v1/admin/master-key/rotate under KEYWAY_WORKERS=2: the workers are one gateway on one port, so
// calls that reach both workers at once are one rotation. Whichever worker a call reaches, it waits for
// the run and answers it (the same id and counts), `joined: true` on all but the call that started it.
// QA: the worker not running it answered 409 "running on another instance".

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addOpenAIKey, freshAnswer, startTwoWorkers, until, type GatewayProcess, type WorkerAnswer } from './process-helpers.ts';

const UPSTREAM_KEY = 'sk-proj-WorkersMasterKeyUpstreamKey00000001';
const OPERATOR_KEY = 'kw_op_WorkersMasterKeyOperatorKey0123456789';
/** Calls sent together in one round, each on a connection of its own. */
const AT_ONCE = 4;

let simulator: SimulatorHandle;
let gateway: GatewayProcess;
let directory = '';

type Answer = WorkerAnswer;

const post = (path: string, body?: unknown): Promise<Answer> =>
  freshAnswer(`${gateway.url}${path}`, OPERATOR_KEY, path.endsWith('/status') ? 'GET' : 'POST', body);

/** Rounds of calls sent together until one round reached both workers: that round's answers. */
async function rotateOnBothWorkers(body?: unknown): Promise<Answer[]> {
  for (let round = 0; round < 10; round += 1) {
    const answers = await Promise.all(Array.from({ length: AT_ONCE }, () => post('/v1/admin/master-key/rotate', body)));
    if (new Set(answers.map(({ worker }) => worker)).size === 2) return answers;
    // A round without wait leaves its run going: the next round must not straddle its end.
    await until(async () => (await post('/v1/admin/master-key/status')).body.rotation_in_progress === false, 20_000);
  }
  throw new Error('no round of calls reached both workers');
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [UPSTREAM_KEY] });
  ({ gateway, directory } = await startTwoWorkers('keyway-workers-master-key', {
    operatorKey: OPERATOR_KEY,
    upstreams: { openai: simulator.url },
    // One row a batch and a long pause after it: a run lasts over a second, so calls sent together overlap it.
    extra: { KEYWAY_MASTER_KEY_REWRAP_BATCH: '1', KEYWAY_MASTER_KEY_REWRAP_PAUSE_MS: '2500' },
  }));
  await addOpenAIKey(gateway.url, OPERATOR_KEY, UPSTREAM_KEY);
}, 60_000);

afterAll(async () => {
  await gateway?.stop('SIGTERM', 30_000).catch(() => gateway.stop('SIGKILL'));
  await simulator?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('master key rotation with KEYWAY_WORKERS=2', () => {
  test('calls reaching both workers at once are one run: every one answers it, all but the first joined', async () => {
    const answers = await rotateOnBothWorkers();
    expect(answers.map(({ status, body }) => ({ status, code: (body.error as { code?: string } | undefined)?.code }))).toEqual(
      answers.map(() => ({ status: 200, code: undefined })),
    );
    const ids = new Set(answers.map(({ body }) => body.id));
    expect(ids.size).toBe(1);
    expect(answers.filter(({ body }) => body.joined === false)).toHaveLength(1);
    for (const { body } of answers) {
      expect(body).toMatchObject({ status: 'completed', key_version: 1, failed: 0, finished_at: expect.any(String) });
      expect(body.already_current).toBe(1);
      expect(body.stored_by_version).toEqual(expect.arrayContaining([expect.objectContaining({ backend: 'local', key_version: 1 })]));
    }
  }, 60_000);

  test('with {"wait": false} a call on the other worker joins the run going on, and its status says it is in progress', async () => {
    const answers = await rotateOnBothWorkers({ wait: false });
    expect(answers.map(({ status, body }) => ({ status, id: body.id, state: body.status }))).toEqual(
      answers.map(() => ({ status: 202, id: answers[0]?.body.id, state: 'running' })),
    );
    expect(answers.filter(({ body }) => body.joined === false)).toHaveLength(1);
    const statuses: Answer[] = [];
    for (let attempt = 0; attempt < 20 && new Set(statuses.map(({ worker }) => worker)).size < 2; attempt += 1) {
      statuses.push(await post('/v1/admin/master-key/status'));
    }
    expect(new Set(statuses.map(({ worker }) => worker)).size).toBe(2);
    for (const { worker, body } of statuses) {
      expect({ worker, in_progress: body.rotation_in_progress, counted: body.stored_by_version }).toEqual({ worker, in_progress: true, counted: null });
    }
  }, 60_000);
});
