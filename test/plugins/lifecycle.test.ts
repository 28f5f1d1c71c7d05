// The plugin lifecycle over real HTTP: a gateway with test plugins in front of the OpenAI simulator.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HookStage, PluginDefinition, RequestContext, RequestOutcome } from '../../core/spec/plugin.ts';
import type { PluginSource } from '../../core/registry.ts';
import { addProviderKeys, call, OPERATOR_KEY, readSse, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { OPENAI_DEFAULT_MODELS, startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { reverseStrategyPlugin, STRATEGY_NAME } from './reverse-strategy/index.ts';

const FIRST_PROVIDER_KEY = 'sk-sim-first-0123456789abcdef';
const SECOND_PROVIDER_KEY = 'sk-sim-second-0123456789abcdef';
const REFUSE_MODEL_PATH = new URL('./refuse-model/index.ts', import.meta.url).pathname;
const FAULT_HEADER = 'x-test-fault';

interface StageRecord {
  stage: HookStage;
  /** What the context held when the stage's hooks ran. */
  hadKeys: boolean;
  hadResolution: boolean;
  candidates: number;
  served: boolean;
  outcomeStatus: number | undefined;
}

/** requestId → the stages its hooks saw, in order. */
const recorded = new Map<string, StageRecord[]>();

function record(stage: HookStage, context: RequestContext, outcome?: RequestOutcome): void {
  const entry: StageRecord = {
    stage,
    hadKeys: context.keys !== undefined,
    hadResolution: context.resolution !== undefined,
    candidates: context.candidates.length,
    served: context.served !== undefined,
    outcomeStatus: outcome?.status,
  };
  const list = recorded.get(context.requestId) ?? [];
  list.push(entry);
  recorded.set(context.requestId, list);
}

const recorderPlugin: PluginDefinition = {
  name: 'test-recorder',
  version: '1.0.0',
  apiVersion: 1,
  kind: 'policy',
  // Declared before its dependency on purpose: its hooks must still run after the faulty plugin's.
  dependencies: ['test-faulty'],
  hooks: {
    auth: (context) => record('auth', context),
    keyResolve: (context) => record('keyResolve', context),
    route: (context) => record('route', context),
    call: (context) => record('call', context),
    account: (context, outcome) => record('account', context, outcome),
  },
};

/** Text a careless plugin might put in an error: a provider key and the operator's gateway key. */
const SECRET_LADEN = `token exchange failed for ${FIRST_PROVIDER_KEY} (caller ${OPERATOR_KEY})`;

/** Misbehaves only when a request asks it to, through a header, so one gateway serves every case. */
const faultyPlugin: PluginDefinition = {
  name: 'test-faulty',
  version: '1.0.0',
  apiVersion: 1,
  kind: 'policy',
  hooks: {
    route(context) {
      if (context.headers.get(FAULT_HEADER) === 'throw') throw new Error(SECRET_LADEN);
    },
    async call(context) {
      await Promise.resolve();
      if (context.headers.get(FAULT_HEADER) === 'reject') throw new Error(SECRET_LADEN);
    },
    account(context) {
      const fault = context.headers.get(FAULT_HEADER);
      if (fault === 'account-throw') throw new Error('the audit sink is down');
      if (fault === 'account-reject') return Promise.reject(new Error('the audit sink timed out'));
    },
  },
};

const extraPlugins: PluginSource[] = [
  { definition: recorderPlugin, source: 'test' },
  { definition: faultyPlugin, source: 'test' },
  { definition: reverseStrategyPlugin, source: 'test' },
];

function chat(model: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model, messages: [{ role: 'user', content: 'Say hello.' }], ...extra };
}

async function errorOf(response: Response): Promise<{ message: string; type: string; code: string; param: string | null }> {
  const body = (await response.json()) as { error: { message: string; type: string; code: string; param: string | null } };
  return body.error;
}

let simulator: SimulatorHandle;
let gateway: TestGateway;
let providerKeyIds: string[];

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [FIRST_PROVIDER_KEY, SECOND_PROVIDER_KEY], models: [...OPENAI_DEFAULT_MODELS, 'refused-model-x'] });
  gateway = await startTestGateway({
    extraPlugins,
    env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_PLUGINS: REFUSE_MODEL_PATH },
  });
  const stored = await addProviderKeys(gateway, [
    { name: 'openai', api_key: FIRST_PROVIDER_KEY },
    { name: 'openai', api_key: SECOND_PROVIDER_KEY },
  ]);
  providerKeyIds = stored.map((key) => String(key.key_id));
  // Listing the providers waits for each key's model list, so bare model names resolve from it.
  expect((await call(gateway, 'GET', '/v1/providers')).status).toBe(200);
});

afterAll(async () => {
  await gateway?.stop();
  await simulator?.stop();
});

describe('lifecycle stages', () => {
  test('run auth → keyResolve → route → call → account for one request, each seeing its stage’s context', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini'));
    expect(response.status).toBe(200);
    const requestId = response.headers.get('x-request-id') ?? '';
    expect(recorded.get(requestId)).toEqual([
      { stage: 'auth', hadKeys: false, hadResolution: false, candidates: 0, served: false, outcomeStatus: undefined },
      { stage: 'keyResolve', hadKeys: true, hadResolution: false, candidates: 0, served: false, outcomeStatus: undefined },
      { stage: 'route', hadKeys: true, hadResolution: true, candidates: 2, served: false, outcomeStatus: undefined },
      { stage: 'call', hadKeys: true, hadResolution: true, candidates: 2, served: false, outcomeStatus: undefined },
      { stage: 'account', hadKeys: true, hadResolution: true, candidates: 2, served: true, outcomeStatus: 200 },
    ]);
  });

  test('account runs once a streamed response has ended', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini', { stream: true }));
    expect(response.status).toBe(200);
    const events = await readSse(response);
    expect(events.at(-1)).toBe('[DONE]');
    const stages = recorded.get(response.headers.get('x-request-id') ?? '')?.map((entry) => entry.stage);
    expect(stages).toEqual(['auth', 'keyResolve', 'route', 'call', 'account']);
  });

  test('a refused request still reaches account, with the refusal as its outcome', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini'), { headers: { [FAULT_HEADER]: 'throw' } });
    expect(response.status).toBe(500);
    const entries = recorded.get(response.headers.get('x-request-id') ?? '') ?? [];
    // The faulty plugin's route hook runs before the recorder's (dependency order), so route is never recorded.
    expect(entries.map((entry) => entry.stage)).toEqual(['auth', 'keyResolve', 'account']);
    expect(entries.at(-1)?.outcomeStatus).toBe(500);
  });
});

describe('errors in hooks', () => {
  test('a hook that throws answers 500 plugin_error naming plugin and stage, with no secret, and the gateway keeps serving', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini'), { headers: { [FAULT_HEADER]: 'throw' } });
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).not.toContain(FIRST_PROVIDER_KEY);
    expect(text).not.toContain(OPERATOR_KEY);
    const error = (JSON.parse(text) as { error: { message: string; type: string; code: string } }).error;
    expect(error.code).toBe('plugin_error');
    expect(error.type).toBe('api_error');
    expect(error.message).toStartWith("Plugin 'test-faulty' failed during route: token exchange failed for [REDACTED]");
    expect(gateway.output.join('\n')).not.toContain(FIRST_PROVIDER_KEY);

    const next = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini'));
    expect(next.status).toBe(200);
    expect((await call(gateway, 'GET', '/health', undefined, { key: '' })).status).toBe(200);
  });

  test('an async hook that rejects is handled the same way', async () => {
    const upstreamCallsBefore = simulator.inferenceRequests().length;
    const response = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini'), { headers: { [FAULT_HEADER]: 'reject' } });
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).not.toContain(FIRST_PROVIDER_KEY);
    expect(text).not.toContain(OPERATOR_KEY);
    const error = (JSON.parse(text) as { error: { message: string; code: string } }).error;
    expect(error.code).toBe('plugin_error');
    expect(error.message).toStartWith("Plugin 'test-faulty' failed during call:");
    // Refused before the provider call: the simulator never saw it.
    expect(simulator.inferenceRequests().length).toBe(upstreamCallsBefore);

    expect((await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini'))).status).toBe(200);
  });

  test.each(['account-throw', 'account-reject'])('an account hook failure (%s) does not change the client’s answer', async (fault) => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini'), { headers: { [FAULT_HEADER]: fault } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { object: string; choices: unknown[] };
    expect(body.object).toBe('chat.completion');
    expect(body.choices.length).toBe(1);
    // The failure is logged for the operator instead (a rejection lands a tick later).
    await Bun.sleep(20);
    expect(gateway.output.some((line) => line.includes('account hook failed') && line.includes('test-faulty'))).toBe(true);
  });
});

describe('KEYWAY_PLUGINS: the refuse-model example loaded from source', () => {
  test('is loaded from the path in KEYWAY_PLUGINS', () => {
    const loaded = gateway.runtime.plugins.plugins.find((plugin) => plugin.name === 'refuse-model');
    expect(loaded?.source).toBe(REFUSE_MODEL_PATH);
  });

  test.each([['refused-model-x'], ['openai/refused-model-x']])('refuses %s with 403 model_not_allowed', async (model) => {
    const before = simulator.inferenceRequests().length;
    const response = await call(gateway, 'POST', '/v1/chat/completions', chat(model));
    expect(response.status).toBe(403);
    const error = await errorOf(response);
    expect(error).toMatchObject({ type: 'permission_error', code: 'model_not_allowed', param: 'model' });
    expect(error.message).toContain("'refused-model-x' is not allowed");
    expect(simulator.inferenceRequests().length).toBe(before);
  });

  test('lets other models through', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o'));
    expect(response.status).toBe(200);
    expect(response.headers.get('x-model-used')).toStartWith('gpt-4o');
  });

  test('takes the refused model from the plugins.refuse-model section of KEYWAY_CONFIG', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'keyway-refuse-config-'));
    const configPath = join(directory, 'keyway.json');
    writeFileSync(configPath, JSON.stringify({ plugins: { 'refuse-model': { model: 'gpt-4o' } } }));
    const configured = await startTestGateway({
      env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_PLUGINS: REFUSE_MODEL_PATH, KEYWAY_CONFIG: configPath },
    });
    try {
      await addProviderKeys(configured, [{ name: 'openai', api_key: FIRST_PROVIDER_KEY }]);
      const refused = await call(configured, 'POST', '/v1/chat/completions', chat('gpt-4o'));
      expect(refused.status).toBe(403);
      expect((await errorOf(refused)).code).toBe('model_not_allowed');
      expect((await call(configured, 'POST', '/v1/chat/completions', chat('gpt-4o-mini'))).status).toBe(200);
    } finally {
      await configured.stop();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('a third-party strategy', () => {
  test('is selectable with routing.strategy and changes which key serves, with no core change', async () => {
    const [firstKeyId, secondKeyId] = providerKeyIds;
    expect(providerKeyIds.length).toBe(2);

    // The default pool balances the two keys; the third-party strategy always takes the last one.
    const servedByDefault = new Set<string>();
    for (let request = 0; request < 24; request++) {
      const byDefault = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini'));
      expect(byDefault.status).toBe(200);
      servedByDefault.add(byDefault.headers.get('x-key-id') ?? '');
    }
    expect([...servedByDefault].sort()).toEqual([firstKeyId ?? '', secondKeyId ?? ''].sort());

    for (let request = 0; request < 8; request++) {
      const reversed = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini', { routing: { strategy: STRATEGY_NAME } }));
      expect(reversed.status).toBe(200);
      expect(reversed.headers.get('x-key-id')).toBe(secondKeyId ?? '');
      expect(reversed.headers.get('x-provider-used')).toBe('openai');
      expect(reversed.headers.get('x-byok-used')).toBe('true');
    }
  });

  test('an unknown strategy name lists the loaded ones, the third-party one included', async () => {
    const response = await call(gateway, 'POST', '/v1/chat/completions', chat('gpt-4o-mini', { routing: { strategy: 'no_such_strategy' } }));
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.param).toBe('routing.strategy');
    expect(error.message).toContain(STRATEGY_NAME);
  });
});
