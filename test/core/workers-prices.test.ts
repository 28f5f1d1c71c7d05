// A price file reloaded on one member of a cluster (a worker of KEYWAY_WORKERS, or an instance) is
// re-read by every other member: two gateways joined by one LocalClusterHub, each with the same file.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalClusterHub } from '../../core/cluster/local.ts';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const folder = mkdtempSync(join(tmpdir(), 'keyway-cluster-prices-'));
const pricesFile = join(folder, 'prices.json');
const gateways: TestGateway[] = [];

function writePrices(inputCostPerToken: number): void {
  writeFileSync(
    pricesFile,
    JSON.stringify({ 'gpt-4o-mini': { litellm_provider: 'openai', mode: 'chat', input_cost_per_token: inputCostPerToken, output_cost_per_token: 0.000002 } }),
  );
}

async function inputPrice(gateway: TestGateway): Promise<unknown> {
  const response = await call(gateway, 'GET', '/v1/platform/prices?provider=openai&model=gpt-4o-mini');
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: Array<{ input_cost_per_token: unknown }> }).data[0]?.input_cost_per_token;
}

beforeAll(async () => {
  writePrices(0.0000005);
  const hub = new LocalClusterHub();
  for (let index = 0; index < 2; index += 1) {
    gateways.push(await startTestGateway({ env: { KEYWAY_PRICES_FILE: pricesFile }, probes: false, logLevel: 'warn', cluster: hub.join() }));
  }
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.stop();
  rmSync(folder, { recursive: true, force: true });
});

test('POST /v1/platform/prices/reload on one member: the other re-reads its file too', async () => {
  const [first, second] = gateways as [TestGateway, TestGateway];
  expect(await inputPrice(second)).toBe(0.0000005);
  writePrices(0.000004);
  expect((await call(first, 'POST', '/v1/platform/prices/reload')).status).toBe(200);
  await Bun.sleep(20);
  expect(await inputPrice(first)).toBe(0.000004);
  expect(await inputPrice(second)).toBe(0.000004);
});
