// The five simulators behind one gateway, each with its own provider key, for the official-client
// suites: a client talks to Keyway only, and the model name alone picks the provider.

import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach } from 'bun:test';
import OpenAI from 'openai';
import type { SimulatorHandle } from '../simulators/common.ts';
import { addProviderKeys, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { PROVIDER_DESCRIPTORS, type ProviderDescriptor } from '../conformance/provider-descriptors.ts';

export interface ClientWorld {
  gateway: TestGateway;
  simulators: Map<string, SimulatorHandle>;
  simulator(provider: string): SimulatorHandle;
  stop(): Promise<void>;
}

export async function startClientWorld(descriptors: readonly ProviderDescriptor[] = PROVIDER_DESCRIPTORS): Promise<ClientWorld> {
  const simulators = new Map<string, SimulatorHandle>();
  let environment: Record<string, string> = {};
  for (const descriptor of descriptors) {
    const simulator = descriptor.startSimulator(descriptor.apiKey);
    simulators.set(descriptor.name, simulator);
    environment = { ...environment, ...descriptor.environment(simulator) };
  }
  const gateway = await startTestGateway({ env: environment });
  await addProviderKeys(
    gateway,
    descriptors.map((descriptor) => ({ name: descriptor.name, api_key: descriptor.apiKey })),
  );
  return {
    gateway,
    simulators,
    simulator(provider) {
      const simulator = simulators.get(provider);
      if (simulator === undefined) throw new Error(`no simulator for ${provider}`);
      return simulator;
    },
    async stop() {
      await gateway.stop();
      for (const simulator of simulators.values()) await simulator.stop();
    },
  };
}

/** The SDKs' promises are thenables: a rejection is captured explicitly rather than with `.rejects`. */
export async function rejectionOf(promise: PromiseLike<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('the call succeeded where a failure was expected');
}

/**
 * A client world for one test file: started before its tests, stopped after, its simulators reset
 * before each test. Read `world()` inside tests (it exists once the file's beforeAll ran).
 */
export function useClientWorld(descriptors?: readonly ProviderDescriptor[]): () => ClientWorld {
  let world: ClientWorld | undefined;
  beforeAll(async () => {
    world = await startClientWorld(descriptors);
  });
  afterAll(async () => {
    await world?.stop();
  });
  beforeEach(() => {
    for (const simulator of world?.simulators.values() ?? []) simulator.reset();
  });
  return () => {
    if (world === undefined) throw new Error('the client world is not started yet');
    return world;
  };
}

/** The official clients pointed at a world's gateway with its admin key, retries off: a test counts every call it makes. */
export function sdkClients(world: ClientWorld): { anthropic: Anthropic; openai: OpenAI } {
  const apiKey = world.gateway.defaultAdminKey;
  return {
    anthropic: new Anthropic({ baseURL: world.gateway.url, apiKey, maxRetries: 0 }),
    openai: new OpenAI({ baseURL: `${world.gateway.url}/v1`, apiKey, maxRetries: 0 }),
  };
}
