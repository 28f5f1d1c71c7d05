// Every on/off variable takes the same spellings, as the core's do (KEYWAY_USAGE_JOURNAL=false turns the
// journal off): off, false, no, 0, in any case, and JSON false in the KEYWAY_CONFIG file. QA17 found the
// plugins' switches listening for `off` alone: KEYWAY_RESPONSES_STORE=false kept storing every prompt
// (store: true in the answer, the prompt served by GET …/input_items, a row in responses_stored),
// KEYWAY_RESPONSES_WEBSOCKET=false kept the WebSocket mode and KEYWAY_TOKENIZERS=false the tokenizer.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { addProviderKeys, call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';

let simulator: SimulatorHandle;
const configDirectory = mkdtempSync(join(tmpdir(), 'keyway-switches-'));

beforeAll(() => {
  simulator = openAIDescriptor.startSimulator(openAIDescriptor.apiKey);
});

afterAll(async () => {
  await simulator.stop();
  rmSync(configDirectory, { recursive: true, force: true });
});

async function gatewayWith(env: Record<string, string>): Promise<TestGateway> {
  const gateway = await startTestGateway({ env: { ...openAIDescriptor.environment(simulator), ...env }, probes: false, logLevel: 'warn' });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: openAIDescriptor.apiKey }]);
  return gateway;
}

/** A KEYWAY_CONFIG file holding `content`. */
function configFile(content: unknown): string {
  const path = join(configDirectory, `keyway-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(content));
  return path;
}

const STORE_OFF: Record<string, Record<string, string>> = {
  'KEYWAY_RESPONSES_STORE=false': { KEYWAY_RESPONSES_STORE: 'false' },
  'KEYWAY_RESPONSES_STORE=0': { KEYWAY_RESPONSES_STORE: '0' },
  'KEYWAY_RESPONSES_STORE=no': { KEYWAY_RESPONSES_STORE: 'no' },
  'KEYWAY_RESPONSES_STORE=OFF': { KEYWAY_RESPONSES_STORE: 'OFF' },
  '"KEYWAY_RESPONSES_STORE": false in the KEYWAY_CONFIG file': { KEYWAY_CONFIG: configFile({ KEYWAY_RESPONSES_STORE: false }) },
};

describe('KEYWAY_RESPONSES_STORE off, however it is spelt, keeps no prompt', () => {
  for (const [name, env] of Object.entries(STORE_OFF)) {
    test(name, async () => {
      const gateway = await gatewayWith(env);
      try {
        const key = gateway.defaultAdminKey;
        const answer = await call(gateway, 'POST', '/v1/responses', { model: openAIDescriptor.model, input: 'CANARYPROMPT store me' }, { key });
        expect(answer.status).toBe(200);
        const created = (await answer.json()) as { id: string; store: boolean };
        expect(created.store).toBe(false);
        await expectSpecError(await call(gateway, 'GET', `/v1/responses/${created.id}/input_items`, undefined, { key }), 404, 'not_found');
        const continued = await call(
          gateway,
          'POST',
          '/v1/responses',
          { model: openAIDescriptor.model, input: 'again', previous_response_id: created.id },
          { key },
        );
        await expectSpecError(continued, 400, 'unsupported_feature');
        expect(await gateway.runtime.store.query('SELECT id FROM responses_stored')).toEqual([]);
      } finally {
        await gateway.stop();
      }
    });
  }
});

test('KEYWAY_RESPONSES_WEBSOCKET=false answers the upgrade 426, as off does', async () => {
  const gateway = await gatewayWith({ KEYWAY_RESPONSES_WEBSOCKET: 'false' });
  try {
    const response = await call(gateway, 'GET', '/v1/responses', undefined, {
      headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    await expectSpecError(response, 426, 'upgrade_required');
  } finally {
    await gateway.stop();
  }
});

test('KEYWAY_TOKENIZERS=false loads no tokenizer, as off does', async () => {
  const gateway = await gatewayWith({ KEYWAY_TOKENIZERS: 'false' });
  try {
    const request = { model: openAIDescriptor.model, messages: [{ role: 'user' as const, content: 'How many tokens is this?' }], max_tokens: 1 };
    expect(await gateway.runtime.services.pricing.countPromptTokens('openai', openAIDescriptor.model, request)).toBeUndefined();
  } finally {
    await gateway.stop();
  }
});
