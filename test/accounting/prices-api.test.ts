// The operator's price control over HTTP: the effective table with each model's source, per-model
// overrides (and what they do to rows booked after them, to an unpriced model, and to a budgeted
// team), KEYWAY_PRICES_FILE at start and on reload, the fees, and every kind of bad input.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addProviderKeys, call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { OPENAI_DEFAULT_MODELS, startOpenAISimulator } from '../simulators/openai.ts';
import { book, price, user } from './booking.ts';

const OPENAI_KEY = 'sk-proj-PricesApiOpenAIKey0000000000000001';
const UNPRICED = 'acme-ft-unpriced-2';
const FILE_MODEL = 'acme-file-model';
const SLASHED = 'acme/ft-model';

const folder = mkdtempSync(join(tmpdir(), 'keyway-prices-'));
const pricesFile = join(folder, 'model_prices_and_context_window.json');

/** A table in LiteLLM's own format: model → entry at the top level, with its sample_spec. */
function writePrices(miniInput: number): void {
  writeFileSync(
    pricesFile,
    JSON.stringify({
      sample_spec: { max_tokens: 'LEGACY parameter. set to max_output_tokens if provider specifies it.', input_cost_per_token: 0 },
      'gpt-4o-mini': { litellm_provider: 'openai', mode: 'chat', input_cost_per_token: miniInput, output_cost_per_token: 0.000002 },
      [FILE_MODEL]: { litellm_provider: 'openai', mode: 'chat', input_cost_per_token: 0.000001, output_cost_per_token: 0.000003, max_output_tokens: 4096 },
    }),
  );
}

let simulator: SimulatorHandle;
let gateway: TestGateway;

beforeAll(async () => {
  writePrices(0.0000005);
  simulator = startOpenAISimulator({ apiKeys: [OPENAI_KEY], models: [...OPENAI_DEFAULT_MODELS, UNPRICED, FILE_MODEL, SLASHED] });
  gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_PRICES_FILE: pricesFile }, probes: false, logLevel: 'info' });
  await addProviderKeys(gateway, [{ name: 'openai', api_key: OPENAI_KEY }]);
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
  rmSync(folder, { recursive: true, force: true });
});

interface PriceRow {
  provider: string;
  model: string;
  source: string;
  priced: boolean;
  input_cost_per_token: number | null;
  output_cost_per_token: number | null;
  cache_read_input_token_cost: number | null;
  max_output_tokens: number | null;
}

async function prices(query: string): Promise<{ data: PriceRow[]; fees: Record<string, number>; file: Record<string, unknown> }> {
  const response = await call(gateway, 'GET', `/v1/platform/prices?${query}`);
  expect(response.status).toBe(200);
  return (await response.json()) as { data: PriceRow[]; fees: Record<string, number>; file: Record<string, unknown> };
}

async function one(model: string): Promise<PriceRow | undefined> {
  return (await prices(`provider=openai&model=${encodeURIComponent(model)}`)).data[0];
}

describe('GET /v1/platform/prices', () => {
  test('the effective table: each model with its source (shipped, file), the file and the fees', async () => {
    const all = await prices('');
    expect(all.data.length).toBeGreaterThan(300);
    expect(all.file).toMatchObject({ path: pricesFile, models: 2, error: null });
    expect(typeof all.file.loaded_at).toBe('string');
    expect(all.fees).toEqual({ platform_markup_percent: 5, byok_fee_percent: 0 });
    const shipped = price('gpt-4o');
    expect(await one('gpt-4o')).toMatchObject({
      source: 'shipped',
      priced: true,
      input_cost_per_token: shipped.input_cost_per_token,
      cache_read_input_token_cost: shipped.cache_read_input_token_cost as number,
    });
    // The file's entry is merged over the shipped one: what it names wins, the rest stays.
    expect(await one('gpt-4o-mini')).toMatchObject({ source: 'file', input_cost_per_token: 0.0000005, output_cost_per_token: 0.000002 });
    expect((await one('gpt-4o-mini'))?.cache_read_input_token_cost).toBe(price('gpt-4o-mini').cache_read_input_token_cost as number);
    expect(await one(FILE_MODEL)).toMatchObject({ source: 'file', priced: true, max_output_tokens: 4096 });
    expect((await prices('source=file')).data.map((row) => row.model).sort()).toEqual([FILE_MODEL, 'gpt-4o-mini']);
  });

  test('a source no price has is refused naming the sources, not answered with an empty list', async () => {
    for (const source of ['nope', 'overrides', 'Shipped', '']) {
      const refused = await expectSpecError(await call(gateway, 'GET', `/v1/platform/prices?source=${source}`), 400, 'invalid_field');
      expect(refused.error.param).toBe('source');
      expect(refused.error.message).toContain('expected one of: shipped, file, override');
    }
    for (const source of ['shipped', 'file', 'override']) expect((await call(gateway, 'GET', `/v1/platform/prices?source=${source}`)).status).toBe(200);
  });

  test('operator only', async () => {
    await expectSpecError(await call(gateway, 'GET', '/v1/platform/prices', undefined, { key: gateway.defaultAdminKey }), 403, 'permission_denied');
    const anonymous = await call(gateway, 'GET', '/v1/platform/prices', undefined, { key: '' });
    expect(anonymous.status).toBe(401);
  });
});

describe('KEYWAY_PRICES_FILE', () => {
  test('rows are priced from the file, and a reload changes the price of rows booked after it only', async () => {
    const before = await book(gateway, { model: 'gpt-4o-mini', messages: [user('price me')] });
    expect(before.row.costUsd as number).toBeCloseTo(before.row.inputTokens * 0.0000005 + before.row.outputTokens * 0.000002, 12);
    writePrices(0.000004);
    const reloaded = await call(gateway, 'POST', '/v1/platform/prices/reload');
    expect(reloaded.status).toBe(200);
    expect(await reloaded.json()).toMatchObject({ reloaded: true, file: { models: 2, error: null } });
    const after = await book(gateway, { model: 'gpt-4o-mini', messages: [user('price me')] });
    expect(after.row.costUsd as number).toBeCloseTo(after.row.inputTokens * 0.000004 + after.row.outputTokens * 0.000002, 12);
    const earlier = (await gateway.runtime.store.listUsage('default')).find((row) => row.requestId === before.row.requestId);
    expect(earlier?.costUsd).toBe(before.row.costUsd);
  });

  test('a bad file is refused with a 400 naming the problem, and the table in use stays', async () => {
    const bad: Array<[string, string]> = [
      ['{ not json', 'not valid JSON'],
      ['[1, 2]', 'JSON object'],
      [JSON.stringify({ 'gpt-4o-mini': { litellm_provider: 'openai', input_cost_per_token: -1 } }), "models['gpt-4o-mini'].input_cost_per_token"],
      [JSON.stringify({ 'gpt-4o-mini': { litellm_provider: 'openai', output_cost_per_token: 'cheap' } }), 'output_cost_per_token'],
      [JSON.stringify({ 'gpt-4o-mini': { litellm_provider: 'openai', max_output_tokens: 1.5 } }), 'max_output_tokens'],
      [JSON.stringify({ x: { litellm_provider: 'openai', search_context_cost_per_query: { search_context_size_low: null } } }), 'search_context_size_low'],
      ['{}', 'no model entries'],
    ];
    for (const [text, problem] of bad) {
      writeFileSync(pricesFile, text);
      const body = await expectSpecError(await call(gateway, 'POST', '/v1/platform/prices/reload'), 400, 'invalid_request');
      expect(body.error.message).toContain(problem);
      expect(body.error.message).toContain('unchanged');
    }
    expect(await one('gpt-4o-mini')).toMatchObject({ source: 'file', input_cost_per_token: 0.000004 });
    expect((await prices('model=gpt-4o-mini')).file.error).toEqual(expect.stringContaining('no model entries'));
    writePrices(0.000004);
    expect((await call(gateway, 'POST', '/v1/platform/prices/reload')).status).toBe(200);
    expect((await prices('model=gpt-4o-mini')).file.error).toBeNull();
  });

  test('a bad file at start: the gateway starts on the embedded table and says why', async () => {
    const badFile = join(folder, 'bad.json');
    writeFileSync(badFile, JSON.stringify({ 'gpt-4o': { litellm_provider: 'openai', input_cost_per_token: 'free' } }));
    const other = await startTestGateway({ env: { KEYWAY_PRICES_FILE: badFile }, probes: false, logLevel: 'info' });
    try {
      expect(other.output.join('\n')).toContain(`KEYWAY_PRICES_FILE ${badFile} refused`);
      const response = await call(other, 'GET', '/v1/platform/prices?provider=openai&model=gpt-4o');
      const body = (await response.json()) as { data: PriceRow[]; file: { error: string } };
      expect(body.data[0]).toMatchObject({ source: 'shipped', input_cost_per_token: price('gpt-4o').input_cost_per_token });
      expect(body.file.error).toContain("models['gpt-4o'].input_cost_per_token");
    } finally {
      await other.stop();
    }
  });

  test('reload without KEYWAY_PRICES_FILE is a 400', async () => {
    const other = await startTestGateway({ probes: false, logLevel: 'warn' });
    try {
      const body = await expectSpecError(await call(other, 'POST', '/v1/platform/prices/reload'), 400, 'invalid_request');
      expect(body.error.message).toContain('KEYWAY_PRICES_FILE is not set');
    } finally {
      await other.stop();
    }
  });
});

describe('overrides', () => {
  test('an override prices an unpriced model for rows booked after it; deleting it makes the model unpriced again', async () => {
    const unpriced = await book(gateway, { model: UNPRICED, provider: 'openai', messages: [user('hello')] });
    expect(unpriced.row.costUsd).toBeNull();
    const put = await call(gateway, 'PUT', '/v1/platform/prices', {
      prices: [{ provider: 'openai', model: UNPRICED, input_cost_per_token: 0.000002, output_cost_per_token: 0.000008, cache_read_input_token_cost: 0.000001 }],
    });
    expect(put.status).toBe(200);
    expect(((await put.json()) as { data: PriceRow[] }).data[0]).toMatchObject({ source: 'override', priced: true, input_cost_per_token: 0.000002 });
    const priced = await book(gateway, { model: UNPRICED, provider: 'openai', messages: [user('hello')] });
    expect(priced.row.costUsd as number).toBeCloseTo(priced.row.inputTokens * 0.000002 + priced.row.outputTokens * 0.000008, 12);
    expect(Number(priced.costHeader)).toBeCloseTo(priced.row.costUsd as number, 9);
    // Stored as a platform setting: it survives a restart.
    const stored = (await gateway.runtime.store.listPlatformSettings()).model_prices as Array<Record<string, unknown>>;
    expect(stored.find((entry) => entry.model === UNPRICED)).toMatchObject({ provider: 'openai', input_cost_per_token: 0.000002 });

    const removed = await call(gateway, 'DELETE', `/v1/platform/prices/openai/${UNPRICED}`);
    expect(removed.status).toBe(200);
    expect(await removed.json()).toMatchObject({ deleted: true, provider: 'openai', model: UNPRICED });
    const again = await book(gateway, { model: UNPRICED, provider: 'openai', messages: [user('hello')] });
    expect(again.row.costUsd).toBeNull();
    await expectSpecError(await call(gateway, 'DELETE', `/v1/platform/prices/openai/${UNPRICED}`), 404, 'not_found');
  });

  test('an override of a priced model replaces the rates it names; the rest comes from the table', async () => {
    const put = await call(gateway, 'PUT', '/v1/platform/prices', { provider: 'openai', model: 'gpt-4o', output_cost_per_token: 0.00002 });
    expect(put.status).toBe(200);
    const shipped = price('gpt-4o');
    expect(await one('gpt-4o')).toMatchObject({ source: 'override', input_cost_per_token: shipped.input_cost_per_token, output_cost_per_token: 0.00002 });
    const booked = await book(gateway, { model: 'gpt-4o', messages: [user('override me')] });
    expect(booked.row.costUsd as number).toBeCloseTo(booked.row.inputTokens * shipped.input_cost_per_token + booked.row.outputTokens * 0.00002, 12);
    // A second override of a table-priced model may name one rate only; it replaces the first whole.
    expect((await call(gateway, 'PUT', '/v1/platform/prices', { provider: 'openai', model: 'gpt-4o', input_cost_per_token: 0.000001 })).status).toBe(200);
    expect(await one('gpt-4o')).toMatchObject({ source: 'override', input_cost_per_token: 0.000001, output_cost_per_token: shipped.output_cost_per_token });
    expect((await call(gateway, 'DELETE', '/v1/platform/prices/openai/gpt-4o')).status).toBe(200);
    expect(await one('gpt-4o')).toMatchObject({ source: 'shipped', output_cost_per_token: shipped.output_cost_per_token });
  });

  test('a model name with a slash is set and deleted by its path', async () => {
    const put = await call(gateway, 'PUT', '/v1/platform/prices', {
      prices: [{ provider: 'openai', model: SLASHED, input_cost_per_token: 0, output_cost_per_token: 0 }],
    });
    expect(put.status).toBe(200);
    expect(await one(SLASHED)).toMatchObject({ source: 'override', priced: true });
    expect((await call(gateway, 'DELETE', `/v1/platform/prices/openai/${SLASHED}`)).status).toBe(200);
    expect(await one(SLASHED)).toBeUndefined();
  });

  test('a DELETE path with an escape that is no UTF-8, or a provider named by an escaped %, is a 404: no 500', async () => {
    for (const path of ['openai/%FF', 'openai/%C3%28', 'openai/%', '%25/gpt-4o', '%C3%28/gpt-4o', 'openai/a%2', 'openai/gpt-4o%FF']) {
      const answer = await expectSpecError(await call(gateway, 'DELETE', `/v1/platform/prices/${path}`), 404, 'not_found');
      expect(answer.error.message).toStartWith('No price override for ');
    }
    expect(gateway.output.some((line) => line.includes('URIError'))).toBe(false);
    // A model whose name holds a % is deleted by its escaped name, and an escaped slash still works.
    const percent = 'acme-50%-off';
    expect(
      (await call(gateway, 'PUT', '/v1/platform/prices', { provider: 'openai', model: percent, input_cost_per_token: 0, output_cost_per_token: 0 })).status,
    ).toBe(200);
    const removed = await call(gateway, 'DELETE', `/v1/platform/prices/openai/${encodeURIComponent(percent)}`);
    expect({ status: removed.status, body: await removed.json() }).toMatchObject({ status: 200, body: { deleted: true, provider: 'openai', model: percent } });
    expect(
      (await call(gateway, 'PUT', '/v1/platform/prices', { provider: 'openai', model: SLASHED, input_cost_per_token: 0, output_cost_per_token: 0 })).status,
    ).toBe(200);
    expect((await call(gateway, 'DELETE', `/v1/platform/prices/openai/${encodeURIComponent(SLASHED)}`)).status).toBe(200);
  });

  test('bad input is a 400 and changes nothing', async () => {
    const cases: Array<[unknown, string, string]> = [
      [
        { prices: [{ provider: 'openai', model: UNPRICED, input_cost_per_token: -0.1, output_cost_per_token: 0 }] },
        'invalid_field',
        'prices[0].input_cost_per_token',
      ],
      [
        { prices: [{ provider: 'openai', model: UNPRICED, input_cost_per_token: 0.1, output_cost_per_token: 'x' }] },
        'invalid_field',
        'prices[0].output_cost_per_token',
      ],
      [{ prices: [{ provider: 'openai', model: UNPRICED, input_cost_per_token: 0.000001 }] }, 'missing_field', 'prices[0].output_cost_per_token'],
      [{ prices: [{ provider: 'martian', model: 'x', input_cost_per_token: 0, output_cost_per_token: 0 }] }, 'invalid_field', 'prices[0].provider'],
      [{ prices: [{ provider: 'openai', model: 'gpt-4o', price: 1 }] }, 'invalid_field', 'prices[0].price'],
      [{ prices: [{ provider: 'openai', model: 'gpt-4o', max_output_tokens: 0 }] }, 'invalid_field', 'prices[0].max_output_tokens'],
      [{ prices: [] }, 'invalid_field', 'prices'],
      [{ provider: 'openai' }, 'missing_field', 'prices[0].model'],
    ];
    for (const [body, code, param] of cases) {
      const answer = await expectSpecError(await call(gateway, 'PUT', '/v1/platform/prices', body), 400, code);
      if (param !== '') expect(answer.error.param).toBe(param);
    }
    await expectSpecError(await call(gateway, 'PUT', '/v1/platform/prices', '{"prices": ['), 400, 'invalid_json');
    expect((await prices('source=override')).data).toEqual([]);
    await expectSpecError(
      await call(gateway, 'PUT', '/v1/platform/prices', { provider: 'openai', model: 'gpt-4o', output_cost_per_token: 0 }, { key: gateway.defaultAdminKey }),
      403,
      'permission_denied',
    );
  });
});

describe('fees', () => {
  test('platform_markup_percent and byok_fee_percent: numbers from 0 to 1000, reported with the prices', async () => {
    for (const body of [{ byok_fee_percent: 1001 }, { platform_markup_percent: -1 }, { byok_fee_percent: '5' }, { platform_markup_percent: null }]) {
      const response = await call(gateway, 'PUT', '/v1/platform/settings', body);
      expect(response.status).toBe(400);
    }
    const response = await call(gateway, 'PUT', '/v1/platform/settings', { platform_markup_percent: 12.5, byok_fee_percent: 250 });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ platform_markup_percent: 12.5, byok_fee_percent: 250 });
    expect((await prices('model=gpt-4o')).fees).toEqual({ platform_markup_percent: 12.5, byok_fee_percent: 250 });
  });
});

describe('an override and a budgeted team', () => {
  test('a model the team could not use (403 model_unpriced) becomes usable once the operator prices it', async () => {
    const created = await call(
      gateway,
      'POST',
      '/v1/teams',
      {
        name: 'Budgeted Team',
        byok_permissions: { providers: { openai: { enabled: true, max_cost_per_day: 10 } } },
        members: [{ email: 'dev@prices.example', role: 'developer', byok_access: true }],
      },
      { key: gateway.defaultAdminKey },
    );
    expect(created.status).toBe(201);
    const team = (await created.json()) as { members: Array<{ api_key: string }> };
    const memberKey = team.members[0]?.api_key as string;
    const request = { model: UNPRICED, provider: 'openai', max_tokens: 50, messages: [user('budgeted hello')] };
    await expectSpecError(await call(gateway, 'POST', '/v1/chat/completions', request, { key: memberKey }), 403, 'model_unpriced');

    const put = await call(gateway, 'PUT', '/v1/platform/prices', {
      provider: 'openai',
      model: UNPRICED,
      input_cost_per_token: 0.000001,
      output_cost_per_token: 0.000002,
    });
    expect(put.status).toBe(200);
    const served = await book(gateway, request, '/v1/chat/completions', memberKey);
    expect(served.row.costUsd as number).toBeCloseTo(served.row.inputTokens * 0.000001 + served.row.outputTokens * 0.000002, 12);
    const usage = await call(gateway, 'GET', '/v1/usage/me?period=today', undefined, { key: memberKey });
    const body = (await usage.json()) as { totals: { cost_usd: number; unpriced_requests: number }; budgets: Array<{ spent_today_usd: number }> };
    expect(body.totals.unpriced_requests).toBe(0);
    expect(body.budgets[0]?.spent_today_usd as number).toBeCloseTo(served.row.costUsd as number, 6);
    expect((await call(gateway, 'DELETE', `/v1/platform/prices/openai/${UNPRICED}`)).status).toBe(200);
    await expectSpecError(await call(gateway, 'POST', '/v1/chat/completions', request, { key: memberKey }), 403, 'model_unpriced');
  });
});

describe('the price view budgets reserve with', () => {
  test('the dearest input and output rates and the per-request search fee; a per-search fee adds nothing', () => {
    const pricing = gateway.runtime.services.pricing;
    const claude = price('claude-sonnet-4-5-20250929');
    expect(pricing.price('anthropic', 'claude-sonnet-4-5-20250929')).toMatchObject({
      inputPerToken: claude.input_cost_per_token,
      worstInputPerToken: claude.cache_creation_input_token_cost_above_1hr as number,
      perRequestUsd: 0,
    });
    const sonar = price('perplexity/sonar');
    expect(pricing.price('perplexity', 'sonar')).toMatchObject({
      perRequestUsd: (sonar.search_context_cost_per_query as Record<string, number>).search_context_size_high as number,
    });
    const deep = price('perplexity/sonar-deep-research');
    expect(pricing.price('perplexity', 'sonar-deep-research')).toMatchObject({ worstOutputPerToken: deep.output_cost_per_token, perRequestUsd: 0 });
  });
});
