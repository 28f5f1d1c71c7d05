// What the routing suites expect, derived from the data Keyway ships (catalog prices, the model
// class table as the API answers it) rather than hard-coded, so a price update does not silently
// turn a cost test into a test of something else.

import { builtinCatalog } from '../helpers/catalog.ts';
import type { ModelClass } from '../../core/routing/model-classes.ts';
import type { RecordedRequest } from '../simulators/common.ts';
import { call, type RoutingGateway, type SimulatorFleet } from './harness.ts';
import { ssePayloads } from '../helpers/sse.ts';

export { ssePayloads };

/** The class table an account sees (`GET /v1/model-classes`). */
export async function modelClasses(gateway: RoutingGateway, key?: string): Promise<ModelClass[]> {
  const response = await call(gateway, 'GET', '/v1/model-classes', undefined, { key });
  return ((await response.json()) as { classes: ModelClass[] }).classes;
}

export function classOf(classes: readonly ModelClass[], model: string): ModelClass {
  const found = classes.find((entry) => entry.name === model || entry.members.includes(model) || Object.values(entry.models).includes(model));
  if (found === undefined) throw new Error(`no model class has ${model}`);
  return found;
}

export interface PricedChoice {
  provider: string;
  model: string;
  effectivePrice: number;
}

/**
 * The order cost_optimized should try the account's keys in: each provider's model of the class
 * (the requested provider keeps the requested model), list price (input + output per token) from
 * the catalog × the request's cost weight, cheapest first.
 */
export function expectedCostOrder(
  modelClass: ModelClass,
  requested: { provider: string; model: string },
  weights: Record<string, number>,
  providersWithKeys: readonly string[],
): PricedChoice[] {
  const catalog = builtinCatalog();
  const models = new Map(Object.entries(modelClass.models));
  models.set(requested.provider, requested.model);
  const choices: PricedChoice[] = [];
  for (const [provider, model] of models) {
    if (!providersWithKeys.includes(provider)) continue;
    const info = catalog.get(provider, model);
    if (info === undefined) throw new Error(`the catalog has no price for ${provider}/${model}; pick another class`);
    choices.push({ provider, model, effectivePrice: (info.inputCostPerToken + info.outputCostPerToken) * (weights[provider] ?? 1) });
  }
  choices.sort((left, right) => left.effectivePrice - right.effectivePrice);
  // A tie would make the expectation depend on insertion order: the tests pick weights that avoid one.
  for (let index = 1; index < choices.length; index++) {
    if (choices[index]?.effectivePrice === choices[index - 1]?.effectivePrice) throw new Error(`tied prices in ${JSON.stringify(choices)}`);
  }
  return choices;
}

/** The model Keyway asked the provider for: the body's `model`, or Gemini's URL path. */
export function sentModel(request: RecordedRequest | undefined): string | undefined {
  if (request === undefined) return undefined;
  const fromPath = /^\/v1beta\/models\/([^/:]+):/.exec(request.path)?.[1];
  if (fromPath !== undefined) return fromPath;
  const body = request.body as { model?: unknown } | undefined;
  return typeof body?.model === 'string' ? body.model : undefined;
}

/** The model of the last inference request a simulator received. */
export function lastSentModel(fleet: SimulatorFleet, provider: keyof SimulatorFleet['simulators']): string | undefined {
  return sentModel(fleet.simulators[provider].inferenceRequests().at(-1));
}

/** Every upstream API key of the given fleets, to prove an answer carries none of them. */
export function upstreamKeysOf(...fleets: SimulatorFleet[]): string[] {
  return fleets.flatMap((fleet) => Object.values(fleet.keys));
}

export function containsAny(text: string, secrets: readonly string[]): string[] {
  return secrets.filter((secret) => text.includes(secret));
}
