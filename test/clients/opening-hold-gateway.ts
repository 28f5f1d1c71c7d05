// The opening-hold suites' world (stream-opening-hold*.test.ts): a simulator for each provider named, each
// with its key, and one gateway in front of them all per hold setting (KEYWAY_STREAM_OPENING_HOLD_MS),
// started before the suite, reset before each test and stopped after it.

import { afterAll, beforeAll, beforeEach } from 'bun:test';
import { addProviderKeys, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { startCohereSimulator } from '../simulators/cohere.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

export type HeldProvider = 'openai' | 'anthropic' | 'cohere';

const STARTERS: Record<HeldProvider, (options: { apiKeys: string[] }) => SimulatorHandle> = {
  openai: startOpenAISimulator,
  anthropic: startAnthropicSimulator,
  cohere: startCohereSimulator,
};

/** The base URL setting of each provider, as its simulator serves it (OpenAI's under /v1). */
function baseUrlSetting(provider: HeldProvider, simulator: SimulatorHandle): [string, string] {
  if (provider === 'openai') return ['KEYWAY_OPENAI_BASE_URL', `${simulator.url}/v1`];
  return [provider === 'anthropic' ? 'KEYWAY_ANTHROPIC_BASE_URL' : 'KEYWAY_COHERE_BASE_URL', simulator.url];
}

export interface OpeningHoldWorld<Provider extends HeldProvider, Hold extends string> {
  /** Started at once, so a suite can name them at its top. */
  simulators: Record<Provider, SimulatorHandle>;
  /** Filled before the suite's first test; `undefined` in `holds` keeps the default hold. */
  gateways: Record<Hold, TestGateway>;
}

export function openingHoldWorld<Provider extends HeldProvider, Hold extends string>(
  keys: Record<Provider, string>,
  holds: Record<Hold, string | undefined>,
): OpeningHoldWorld<Provider, Hold> {
  const providers = Object.keys(keys) as Provider[];
  const simulators = {} as Record<Provider, SimulatorHandle>;
  for (const provider of providers) simulators[provider] = STARTERS[provider]({ apiKeys: [keys[provider]] });
  const gateways = {} as Record<Hold, TestGateway>;
  beforeAll(async () => {
    const env = Object.fromEntries(providers.map((provider) => baseUrlSetting(provider, simulators[provider])));
    for (const [hold, milliseconds] of Object.entries(holds) as Array<[Hold, string | undefined]>) {
      const started = await startTestGateway({
        env: milliseconds === undefined ? env : { ...env, KEYWAY_STREAM_OPENING_HOLD_MS: milliseconds },
        probes: false,
      });
      await addProviderKeys(
        started,
        providers.map((provider) => ({ name: provider, api_key: keys[provider] })),
      );
      gateways[hold] = started;
    }
  });
  afterAll(async () => {
    for (const started of Object.values<TestGateway | undefined>(gateways)) await started?.stop();
    for (const simulator of Object.values<SimulatorHandle>(simulators)) await simulator.stop();
  });
  beforeEach(() => {
    for (const simulator of Object.values<SimulatorHandle>(simulators)) simulator.reset();
  });
  return { simulators, gateways };
}

/** The types of a stream's events as an SDK reads them, and the error that ended it (undefined when none did). */
export async function eventTypesUntilFailure(stream: AsyncIterable<{ type: string }>): Promise<{ types: string[]; failure: unknown }> {
  const types: string[] = [];
  try {
    for await (const event of stream) types.push(event.type);
  } catch (error) {
    return { types, failure: error };
  }
  return { types, failure: undefined };
}
