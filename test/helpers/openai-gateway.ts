// A test file's gateway in front of one OpenAI simulator holding one account key: started before the
// file's tests, stopped after them. Read `gateway` and `simulator` inside tests and later hooks.

import { afterAll, beforeAll } from 'bun:test';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { addProviderKeys, startTestGateway, type TestGateway } from './gateway.ts';

export interface OpenAIGateway {
  readonly gateway: TestGateway;
  readonly simulator: SimulatorHandle;
}

export function openAIGatewaySuite(upstreamKey: string): OpenAIGateway {
  const suite = {} as { gateway: TestGateway; simulator: SimulatorHandle };
  beforeAll(async () => {
    suite.simulator = startOpenAISimulator({ apiKeys: [upstreamKey] });
    suite.gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${suite.simulator.url}/v1` }, probes: false });
    await addProviderKeys(suite.gateway, [{ name: 'openai', api_key: upstreamKey }]);
  });
  afterAll(async () => {
    await suite.gateway.stop();
    await suite.simulator.stop();
  });
  return suite;
}
