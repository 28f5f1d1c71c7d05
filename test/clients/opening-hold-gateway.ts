// A gateway in front of the given provider simulators, each with its key, for the opening-hold suites
// (stream-opening-hold*.test.ts), which start several with different KEYWAY_STREAM_OPENING_HOLD_MS.

import { addProviderKeys, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';

export interface HeldUpstream {
  provider: 'openai' | 'anthropic' | 'cohere';
  simulator: SimulatorHandle;
  key: string;
}

/** The base URL setting of each provider, as its simulator serves it (OpenAI's under /v1). */
function baseUrlSetting({ provider, simulator }: HeldUpstream): [string, string] {
  if (provider === 'openai') return ['KEYWAY_OPENAI_BASE_URL', `${simulator.url}/v1`];
  return [provider === 'anthropic' ? 'KEYWAY_ANTHROPIC_BASE_URL' : 'KEYWAY_COHERE_BASE_URL', simulator.url];
}

export async function gatewayOver(upstreams: readonly HeldUpstream[], env: Record<string, string> = {}): Promise<TestGateway> {
  const started = await startTestGateway({ env: { ...Object.fromEntries(upstreams.map(baseUrlSetting)), ...env }, probes: false });
  await addProviderKeys(
    started,
    upstreams.map(({ provider, key }) => ({ name: provider, api_key: key })),
  );
  return started;
}
