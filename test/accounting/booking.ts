// Calls made as a client makes them, and the usage rows they leave: shared by the cost tests.

import { afterAll, beforeAll } from 'bun:test';
import type { UsageRecord } from '../../core/spec/store.ts';
import OpenAI from 'openai';
import { addProviderKeys, call, flushUsage, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import type { PriceFields } from '../../core/catalog/catalog.ts';

let sequence = 0;

export const user = (content: string) => ({ role: 'user', content });

/** A request id of its own for each call, so its row can be found. */
export function nextRequestId(): string {
  return `req_cost_${process.pid}_${++sequence}`;
}

/** Waits for the request's usage row. */
export async function rowOf(target: TestGateway, requestId: string): Promise<UsageRecord> {
  for (let waited = 0; waited < 5_000; waited += 25) {
    await flushUsage(target);
    const row = (await target.runtime.store.listUsage('default')).find((candidate) => candidate.requestId === requestId);
    if (row !== undefined) return row;
    await Bun.sleep(25);
  }
  throw new Error(`no usage row for ${requestId}`);
}

/** The accounted fields of the usage row booked for an answer (read to its end first), by its X-Request-Id. */
export async function bookedRow(target: TestGateway, response: Response): Promise<Record<string, unknown>> {
  const requestId = response.headers.get('x-request-id');
  await response.text();
  await flushUsage(target);
  const row = (await target.runtime.store.listUsage('default')).find((entry) => entry.requestId === requestId);
  if (row === undefined) throw new Error('no usage row');
  const { inputTokens, outputTokens, cachedInputTokens, reasoningTokens, costUsd, provider, model, status } = row;
  return { inputTokens, outputTokens, cachedInputTokens, reasoningTokens, costUsd, provider, model, status };
}

export interface Booked {
  row: UsageRecord;
  costHeader: string | null;
  text: string;
}

/** One call, read to its end as a client would, and the usage row it left; anything but a 200 throws. */
export async function book(target: TestGateway, body: Record<string, unknown>, path = '/v1/chat/completions', key?: string): Promise<Booked> {
  const requestId = nextRequestId();
  const response = await call(target, 'POST', path, body, { key, headers: { 'x-request-id': requestId } });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${text}`);
  return { row: await rowOf(target, requestId), costHeader: response.headers.get('x-keyway-cost'), text };
}

/** What must be equal between two bookings of the same answer. */
export function accounted(row: UsageRecord) {
  return {
    provider: row.provider,
    model: row.model,
    status: row.status,
    inputTokens: row.inputTokens,
    outputTokens: row.outputTokens,
    cachedInputTokens: row.cachedInputTokens,
    cacheWriteTokens: row.cacheWriteTokens,
    cacheWrite1hTokens: row.cacheWrite1hTokens ?? 0,
    reasoningTokens: row.reasoningTokens,
    costUsd: row.costUsd,
    usageEstimated: row.usageEstimated ?? false,
  };
}

/** A model's prices as the shipped table holds them. */
export type PriceEntry = PriceFields;

const PRICES = ((await Bun.file(new URL('../../core/catalog/model-prices.json', import.meta.url)).json()) as { models: Record<string, PriceEntry> }).models;

export type ListPrice = Required<Pick<PriceEntry, 'input_cost_per_token' | 'output_cost_per_token'>> & PriceEntry;

/** The shipped list price of one model, by its key in model-prices.json (read here, not through Keyway's code). */
export function price(key: string): ListPrice {
  const entry = PRICES[key];
  if (entry?.input_cost_per_token === undefined || entry.output_cost_per_token === undefined) throw new Error(`no list price for ${key}`);
  return entry as ListPrice;
}

/**
 * A gateway with one key per provider of `keys` (provider name → upstream key) in front of simulators
 * the caller started: stopped, with them, after the file's tests.
 */
export function keyedGatewayPerFile(
  start: () => { simulators: SimulatorHandle[]; options: Parameters<typeof startTestGateway>[0] },
  keys: Record<string, string>,
): () => TestGateway {
  let gateway: TestGateway | undefined;
  let simulators: SimulatorHandle[] = [];
  beforeAll(async () => {
    const started = start();
    simulators = started.simulators;
    gateway = await startTestGateway(started.options);
    await addProviderKeys(
      gateway,
      Object.entries(keys).map(([name, api_key]) => ({ name, api_key })),
    );
  });
  afterAll(async () => {
    await gateway?.stop();
    for (const simulator of simulators) await simulator.stop();
  });
  return () => {
    if (gateway === undefined) throw new Error('the gateway is read before the file started it');
    return gateway;
  };
}

/**
 * The OpenAI simulator (with `simulator`'s options and `key`), a gateway keyed with it in front, and the
 * official client on the operator key: for the files that book OpenAI calls and read their rows.
 */
export function openAIBookingPerFile(
  key: string,
  simulator: Omit<NonNullable<Parameters<typeof startOpenAISimulator>[0]>, 'apiKeys'>,
): { gateway: () => TestGateway; client: () => OpenAI } {
  const gateway = keyedGatewayPerFile(
    () => {
      const openai = startOpenAISimulator({ ...simulator, apiKeys: [key] });
      return { simulators: [openai], options: { env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1` }, probes: false, logLevel: 'info' } };
    },
    { openai: key },
  );
  let client: OpenAI | undefined;
  return { gateway, client: () => (client ??= new OpenAI({ baseURL: `${gateway().url}/v1`, apiKey: OPERATOR_KEY, maxRetries: 0 })) };
}
