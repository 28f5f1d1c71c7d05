// Reconciliation end to end: real requests through Keyway to the OpenAI and Anthropic simulators,
// whose organisation reports say what they actually served; Keyway's books must agree to the cent,
// injected drift must be reported with its amount and alerted once, and the admin keys must never
// come back out.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addProviderKeys, call, expectSpecError, flushUsage } from '../helpers/gateway.ts';
import { ANTHROPIC_SIM_ADMIN_KEY } from '../simulators/anthropic.ts';
import { OPENAI_SIM_ADMIN_KEY } from '../simulators/openai.ts';
import { readAllEvents } from '../audit/helpers.ts';
import { ANTHROPIC_KEY, chat, messages, OPENAI_KEY, OPENAI_SECOND_KEY, runDailyJobTomorrow, startHarness, today, type Harness } from './helpers.ts';

interface Row {
  day: string;
  provider: string;
  model: string;
  status: string;
  keyway_cost_usd: number;
  provider_cost_usd: number;
  drift_usd: number;
  drift_percent: number | null;
  keyway_tokens: Record<string, number>;
  provider_tokens: Record<string, number> | null;
}

interface KeyRow {
  provider: string;
  key_id: string | null;
  match: string;
  status: string;
  keyway_tokens: Record<string, number> | null;
  provider_tokens: Record<string, number> | null;
}

let harness: Harness;
const keyIds: Record<string, string> = {};

function accountAdminKey(body: Record<string, unknown>): string {
  return String((body.admin_key as { api_key: string }).api_key);
}

async function report(query: string, key?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return harness.read(await call(harness.gateway, 'GET', `/v1/analytics/reconciliation?${query}`, undefined, { key }));
}

beforeAll(async () => {
  harness = await startHarness();
  const stored = await addProviderKeys(harness.gateway, [
    { name: 'openai', api_key: OPENAI_KEY },
    { name: 'openai', api_key: OPENAI_SECOND_KEY },
    { name: 'anthropic', api_key: ANTHROPIC_KEY },
  ]);
  for (const [index, key] of stored.entries()) keyIds[index] = String(key.key_id);
  for (const [provider, adminKey] of [
    ['openai', OPENAI_SIM_ADMIN_KEY],
    ['anthropic', ANTHROPIC_SIM_ADMIN_KEY],
  ] as const) {
    const answer = await harness.read(await call(harness.gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider, admin_key: adminKey }));
    expect(answer.status).toBe(200);
    expect(answer.body.verified).toBe(true);
  }
  // Traffic through both inbound APIs, streamed and not, cache reads included, on two OpenAI keys.
  await chat(harness, 'gpt-4o', 'Reconcile me, please.');
  await chat(harness, 'gpt-4o', 'And a streamed one.', { stream: true });
  await chat(harness, 'gpt-4o-mini', 'A cached prompt that is long enough to be worth caching at all.', { extra: { prompt_cache_key: 'recon-cache' } });
  await chat(harness, 'gpt-4o-mini', 'A cached prompt that is long enough to be worth caching at all.', { extra: { prompt_cache_key: 'recon-cache' } });
  await chat(harness, 'openai/gpt-4o', 'On whichever key the pool picks.', { stream: true });
  await chat(harness, 'claude-sonnet-4-20250514', 'Hello Claude through the OpenAI dialect.');
  await messages(harness, 'claude-sonnet-4-20250514', 'Hello Claude, streamed.', true);
  await messages(harness, 'claude-haiku-4-5-20251001', 'Hello Haiku.', false);
  // A 5-minute cache write, then a read of it.
  const system = [{ type: 'text', text: 'You are a careful accountant. '.repeat(40), cache_control: { type: 'ephemeral' } }];
  await messages(harness, 'claude-sonnet-4-20250514', 'First question.', false, system);
  await messages(harness, 'claude-sonnet-4-20250514', 'Second question.', true, system);
  await flushUsage(harness.gateway);
});

afterAll(async () => {
  await harness?.stop();
});

describe('reconciliation against the providers’ reports', () => {
  test('every provider, model and day matches: drift 0, tokens equal', async () => {
    const { status, body } = await report('period=today');
    if (process.env.RECON_DEBUG) console.log(JSON.stringify(body, null, 1));
    expect(status).toBe(200);
    const rows = body.rows as Row[];
    const providers = body.providers as Array<{ provider: string; status: string; totals: { drift_usd: number; provider_cost_usd: number } }>;
    expect(providers.map((entry) => [entry.provider, entry.status])).toEqual([
      ['openai', 'ok'],
      ['anthropic', 'ok'],
    ]);
    expect(rows.map((row) => `${row.provider}/${row.model}`).sort()).toEqual([
      'anthropic/claude-haiku-4-5-20251001',
      'anthropic/claude-sonnet-4-20250514',
      'openai/gpt-4o',
      'openai/gpt-4o-mini',
    ]);
    for (const row of rows) {
      expect({ model: row.model, status: row.status, drift: row.drift_usd }).toEqual({ model: row.model, status: 'matched', drift: 0 });
      expect(row.day).toBe(today());
      expect(row.keyway_cost_usd).toBeGreaterThan(0);
      expect(row.provider_tokens?.input_tokens).toBe(row.keyway_tokens.input_tokens);
      expect(row.provider_tokens?.output_tokens).toBe(row.keyway_tokens.output_tokens);
    }
    // The cached call was priced at the cache-read rate on both sides.
    expect(rows.find((row) => row.model === 'gpt-4o-mini')?.keyway_tokens.cached_input_tokens).toBeGreaterThan(0);
    const sonnet = rows.find((row) => row.model === 'claude-sonnet-4-20250514');
    expect(sonnet?.keyway_tokens.cache_write_tokens).toBeGreaterThan(0);
    expect(sonnet?.keyway_tokens.cached_input_tokens).toBe(sonnet?.keyway_tokens.cache_write_tokens ?? -1);
    expect(sonnet?.provider_tokens).toEqual(sonnet?.keyway_tokens ?? null);
    for (const entry of providers) expect(entry.totals.drift_usd).toBe(0);
  });

  test('each Keyway key is recognised from the provider’s key hints and its tokens agree', async () => {
    const { body } = await report('period=today');
    const keys = body.keys as KeyRow[];
    const used = keys.filter((row) => row.key_id !== null);
    expect(used.length).toBeGreaterThanOrEqual(2);
    for (const row of used)
      expect({ key: row.key_id, match: row.match, status: row.status }).toEqual({ key: row.key_id, match: 'masked_key', status: 'matched' });
    expect(keys.filter((row) => row.status === 'missing_in_keyway')).toEqual([]);
    expect(used.some((row) => row.key_id === keyIds[2])).toBe(true);
  });

  test('a period across several report pages still matches (pagination)', async () => {
    const start = new Date(Date.now() - 45 * 86_400_000).toISOString().slice(0, 10);
    const end = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    harness.openai.ledger.reportCalls.length = 0;
    harness.anthropic.ledger.reportCalls.length = 0;
    const { status, body } = await report(`start=${start}&end=${end}`);
    expect(status).toBe(200);
    expect((body.rows as Row[]).every((row) => row.status === 'matched')).toBe(true);
    expect((body.rows as Row[]).length).toBe(4);
    // 46 day buckets at 31 a page: each report was read in two pages.
    for (const calls of [harness.openai.ledger.reportCalls, harness.anthropic.ledger.reportCalls]) {
      expect(calls.filter((path) => /(costs|cost_report)\?/.test(path) && path.includes('page=')).length).toBe(1);
      expect(calls.filter((path) => /(completions|messages)\?/.test(path) && path.includes('page=')).length).toBe(1);
    }
  });

  test('injected drift is reported with its amount and the model it concerns', async () => {
    harness.anthropic.ledger.addCharge({ model: 'claude-haiku-4-5-20251001', usd: 0.25, outputTokens: 1000, apiKey: ANTHROPIC_KEY });
    const { body } = await report('period=today&provider=anthropic');
    const rows = body.rows as Row[];
    const haiku = rows.find((row) => row.model === 'claude-haiku-4-5-20251001');
    expect(haiku?.status).toBe('drift');
    expect(haiku?.drift_usd).toBeCloseTo(0.25, 9);
    expect(haiku?.drift_percent).toBeGreaterThan(90);
    expect(rows.find((row) => row.model === 'claude-sonnet-4-20250514')?.status).toBe('matched');
    expect(((body.keys as KeyRow[]).find((row) => row.key_id === keyIds[2]) ?? {}).status).toBe('drift');
    harness.anthropic.ledger.charges.length = 0;
  });

  test('a model only the provider billed is missing_in_keyway', async () => {
    harness.openai.ledger.addCharge({ model: 'gpt-4.1', usd: 0.1 });
    const { body } = await report('period=today&provider=openai');
    const row = (body.rows as Row[]).find((entry) => entry.model === 'gpt-4.1');
    expect(row?.status).toBe('missing_in_keyway');
    expect(row?.drift_usd).toBeCloseTo(0.1, 9);
    harness.openai.ledger.charges.length = 0;
  });

  test('the daily job stores the day, alerts once on drift over the threshold, and never twice', async () => {
    const settings = await harness.read(
      await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { drift_alert_percent: 5, drift_alert_min_usd: 0.1, notify: [harness.webhookUrl] }),
    );
    expect(settings.status).toBe(200);
    harness.openai.ledger.addCharge({ model: 'gpt-4o', usd: 0.5 });
    // Tomorrow at 03:00 UTC, after the reports have settled: the job reconciles today.
    await runDailyJobTomorrow(harness);
    expect(harness.alerts.length).toBe(1);
    const alert = harness.alerts[0];
    expect(alert?.type).toBe('reconciliation_drift');
    expect(alert?.details.provider).toBe('openai');
    expect(alert?.details.day).toBe(today());
    expect(alert?.details.drift_usd as number).toBeCloseTo(0.5, 9);
    expect((alert?.details.models as Array<{ model: string }>)[0]?.model).toBe('gpt-4o');

    // A manual re-run of the same day reports the same drift and does not alert again.
    const rerun = await harness.read(await call(harness.gateway, 'POST', '/v1/reconciliation/run', { day: today() }));
    expect(rerun.status).toBe(200);
    const runs = rerun.body.runs as Array<{ provider: string; status: string; alerted: boolean; totals: { drift_usd: number } }>;
    expect(runs.map((run) => [run.provider, run.status, run.alerted])).toEqual([
      ['openai', 'ok', false],
      ['anthropic', 'ok', false],
    ]);
    expect(runs[0]?.totals.drift_usd).toBeCloseTo(0.5, 9);
    expect(harness.alerts.length).toBe(1);

    const stored = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/runs?period=today'));
    const storedRuns = stored.body.runs as Array<{ provider: string; drift_usd: number; alerted_at: string | null }>;
    expect(storedRuns.map((run) => run.provider).sort()).toEqual(['anthropic', 'openai']);
    expect(storedRuns.find((run) => run.provider === 'openai')?.alerted_at).not.toBeNull();
    expect(storedRuns.find((run) => run.provider === 'anthropic')?.alerted_at).toBeNull();
    harness.openai.ledger.charges.length = 0;
  });
});

describe('narrowed to a project or workspace', () => {
  const OTHER_OPENAI_KEY = 'sk-proj-AnotherApplicationsKey000000000000zz99';
  const OTHER_ANTHROPIC_KEY = 'sk-ant-api03-AnotherApplicationsKey0000000yy88';

  test('traffic that did not go through Keyway shows, until the report is narrowed to Keyway’s project and workspace', async () => {
    // Another application on the same organisations, with keys Keyway does not hold.
    harness.openai.state.apiKeys.add(OTHER_OPENAI_KEY);
    harness.openai.ledger.groups.set(OTHER_OPENAI_KEY, 'proj_other');
    harness.anthropic.state.apiKeys.add(OTHER_ANTHROPIC_KEY);
    harness.anthropic.ledger.groups.set(ANTHROPIC_KEY, 'wrkspc_keyway');
    harness.anthropic.ledger.groups.set(OTHER_ANTHROPIC_KEY, 'wrkspc_other');
    const direct = await fetch(`${harness.openai.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OTHER_OPENAI_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Not through Keyway.' }] }),
    });
    expect(direct.status).toBe(200);
    const directAnthropic = await fetch(`${harness.anthropic.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': OTHER_ANTHROPIC_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-haiku-4-5-20251001', max_tokens: 50, messages: [{ role: 'user', content: 'Not through Keyway either.' }] }),
    });
    expect(directAnthropic.status).toBe(200);

    const whole = await report('period=today');
    const drifted = (whole.body.rows as Row[]).filter((row) => row.status !== 'matched').map((row) => `${row.provider}/${row.model}`);
    expect(drifted.sort()).toEqual(['anthropic/claude-haiku-4-5-20251001', 'openai/gpt-4o']);
    const strangers = (whole.body.keys as KeyRow[]).filter((row) => row.status === 'missing_in_keyway').map((row) => row.provider);
    expect(strangers.sort()).toEqual(['anthropic', 'openai']);

    for (const [provider, adminKey, scope] of [
      ['openai', OPENAI_SIM_ADMIN_KEY, { project_ids: ['proj_keywaysimulator'] }],
      ['anthropic', ANTHROPIC_SIM_ADMIN_KEY, { workspace_ids: ['wrkspc_keyway'] }],
    ] as const) {
      const stored = await harness.read(await call(harness.gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider, admin_key: adminKey, ...scope }));
      expect(stored.status).toBe(200);
      expect(stored.body.admin_key).toMatchObject(scope);
    }
    const narrowed = await report('period=today');
    expect((narrowed.body.rows as Row[]).every((row) => row.status === 'matched')).toBe(true);
    expect((narrowed.body.keys as KeyRow[]).filter((row) => row.status !== 'matched')).toEqual([]);
    await expectSpecError(
      await call(harness.gateway, 'PUT', '/v1/reconciliation/admin-keys', {
        provider: 'openai',
        admin_key: OPENAI_SIM_ADMIN_KEY,
        workspace_ids: ['wrkspc_keyway'],
      }),
      400,
      'invalid_field',
    );
  });
});

describe('admin keys', () => {
  test('a wrong admin key, or an ordinary API key, is refused by the provider and not stored', async () => {
    for (const [provider, adminKey] of [
      ['openai', 'sk-admin-WrongWrongWrongWrongWrong0123456789'],
      ['openai', OPENAI_KEY],
      ['anthropic', 'sk-ant-admin01-WrongWrongWrongWrongWrong0123456789'],
      ['anthropic', ANTHROPIC_KEY],
    ] as const) {
      const response = await call(harness.gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider, admin_key: adminKey });
      const text = await response.clone().text();
      harness.answers.push(text);
      const body = await expectSpecError(response, 422, 'admin_key_rejected');
      expect(body.error.param).toBe('admin_key');
      expect(text).not.toContain(adminKey);
    }
    const listed = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/admin-keys'));
    const keys = listed.body.admin_keys as Array<{ provider: string; masked_key: string }>;
    expect(keys.map((key) => key.provider).sort()).toEqual(['anthropic', 'openai']);
    for (const key of keys) expect(key.masked_key).toMatch(/…/);
  });

  test('a stored key the provider stops accepting is reported plainly as admin_key_rejected', async () => {
    const created = await harness.read(await call(harness.gateway, 'POST', '/v1/accounts', { name: 'rejected-admin-key' }));
    const accountKey = accountAdminKey(created.body);
    const stored = await harness.read(
      await call(
        harness.gateway,
        'PUT',
        '/v1/reconciliation/admin-keys',
        { provider: 'openai', admin_key: 'sk-admin-RevokedRevokedRevoked0123456789', verify: false },
        { key: accountKey },
      ),
    );
    expect(stored.status).toBe(200);
    expect(stored.body.verified).toBe(false);
    const { status, body } = await report('period=today', accountKey);
    expect(status).toBe(200);
    const providers = body.providers as Array<{ provider: string; status: string; error?: { code: string; message: string } }>;
    expect(providers[0]).toMatchObject({ provider: 'openai', status: 'error', error: { code: 'admin_key_rejected' } });
    expect(providers[1]).toMatchObject({ provider: 'anthropic', status: 'not_configured' });
    expect(JSON.stringify(body)).not.toContain('RevokedRevoked');
  });

  test('bad input is a spec-shaped 400', async () => {
    await expectSpecError(await call(harness.gateway, 'GET', '/v1/analytics/reconciliation?period=fortnight'), 400, 'invalid_field');
    await expectSpecError(await call(harness.gateway, 'GET', '/v1/analytics/reconciliation?start=2026-02-01&end=2026-01-01'), 400, 'invalid_field');
    await expectSpecError(await call(harness.gateway, 'GET', '/v1/analytics/reconciliation?period=today&provider=google'), 400, 'invalid_field');
    const tooLong = await expectSpecError(
      await call(harness.gateway, 'GET', '/v1/analytics/reconciliation?start=2020-01-01&end=2026-01-01'),
      400,
      'invalid_field',
    );
    expect(tooLong.error.param).toBe('start');
    await expectSpecError(
      await call(harness.gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'google', admin_key: 'whatever-key-0123' }),
      400,
      'invalid_field',
    );
    await expectSpecError(await call(harness.gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai' }), 400, 'missing_field');
    await expectSpecError(await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { drift_alert_percent: -1 }), 400, 'invalid_field');
    await expectSpecError(await call(harness.gateway, 'POST', '/v1/reconciliation/run', { day: '2026-13-45' }), 400, 'invalid_field');
    await expectSpecError(await call(harness.gateway, 'POST', '/v1/reconciliation/run', '[1'), 400, 'invalid_json');
    // A day the calendar does not have, or one that has not begun, is never stored as a run.
    for (const day of ['2026-02-30', '2026-11-31', '2099-01-01']) {
      const refused = await expectSpecError(await call(harness.gateway, 'POST', '/v1/reconciliation/run', { day }), 400, 'invalid_field');
      expect(refused.error.param).toBe('day');
    }
    const stored = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/runs?start=2026-02-01&end=2026-12-31'));
    expect((stored.body.runs as Array<{ day: string }>).some((run) => ['2026-03-02', '2026-12-01', '2099-01-01'].includes(run.day))).toBe(false);
    expect(stored.status).toBe(200);
  });

  test('a day before 2020-01-01 is refused, naming the field: no provider reports usage or cost that early', async () => {
    for (const day of ['0000-01-01', '1999-12-31', '2019-12-31']) {
      const refused = await expectSpecError(await call(harness.gateway, 'POST', '/v1/reconciliation/run', { day }), 400, 'invalid_field');
      expect(refused.error.param).toBe('day');
      expect(refused.error.message).toContain('2020-01-01');
    }
    const earliest = await harness.read(await call(harness.gateway, 'POST', '/v1/reconciliation/run', { day: '2020-01-01' }));
    expect(earliest.status).toBe(200);
    const stored = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/runs?start=2019-01-01&end=2020-01-01'));
    expect(stored.body.runs).toEqual([]);
    // The on-demand report would ask the providers for each of those days: refused the same way.
    const report = await expectSpecError(
      await call(harness.gateway, 'GET', '/v1/analytics/reconciliation?start=0000-01-01&end=0000-02-01'),
      400,
      'invalid_field',
    );
    expect(report.error.param).toBe('start');
    expect(report.error.message).toContain('2020-01-01');
  });

  test('an unknown field is refused naming it, on every reconciliation write: a misspelt run never runs the default day', async () => {
    const runsBefore = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/runs?period=last_30_days'));
    for (const [field, body] of [
      ['dayy', { dayy: '2026-12-06', providr: 'openai' }],
      ['providr', { day: '2026-01-05', providr: 'openai' }],
    ] as const) {
      const refused = await expectSpecError(await call(harness.gateway, 'POST', '/v1/reconciliation/run', body), 400, 'invalid_field');
      expect(refused.error.param).toBe(field);
    }
    const runsAfter = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/runs?period=last_30_days'));
    expect(runsAfter.body.runs).toEqual(runsBefore.body.runs);
    const settings = await expectSpecError(await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { drift_alert_percnt: 5 }), 400, 'invalid_field');
    expect(settings.error.param).toBe('drift_alert_percnt');
    const adminKey = await expectSpecError(
      await call(harness.gateway, 'PUT', '/v1/reconciliation/admin-keys', { provider: 'openai', admin_key: OPENAI_SIM_ADMIN_KEY, verfy: false }),
      400,
      'invalid_field',
    );
    expect(adminKey.error.param).toBe('verfy');
  });

  test('notify targets are checked as alert rule targets are: 400 naming notify[i], nothing stored', async () => {
    const before = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/settings'));
    const refused: Array<[string[], string]> = [
      [['finance@company.com', 'not-an-address'], 'notify[1]'],
      [['https://169.254.169.254/latest/meta-data/'], 'notify[0]'],
      [['ops@company.com', 'http://10.0.0.7/drift'], 'notify[1]'],
      // Loopback beyond the one receiver the operator allowed.
      [[`http://127.0.0.1:${Number(new URL(harness.webhookUrl).port) + 1}/alerts`], 'notify[0]'],
    ];
    for (const [notify, param] of refused) {
      const error = await expectSpecError(await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { notify }), 400, 'invalid_field');
      expect(error.error.param).toBe(param);
    }
    const after = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/settings'));
    expect(after.body).toEqual(before.body);
    const accepted = await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { notify: ['finance@company.com', harness.webhookUrl] });
    expect(accepted.status).toBe(200);
    await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { notify: [] });
  });

  test("a webhook target's URL is shown masked, in answers and in the audit log, and a masked one is not taken back", async () => {
    const secretUrl = 'https://hooks.slack.com/services/T0RECON/B0RECON/ReconSlackSecretToken0001';
    const put = await harness.read(await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { notify: [secretUrl] }));
    expect(put.status).toBe(200);
    const got = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/settings'));
    for (const answer of [put, got]) {
      const notify = (answer.body.settings as { notify: string[] }).notify;
      expect(notify).toHaveLength(1);
      expect(notify[0]).not.toContain('ReconSlackSecretToken0001');
      expect(notify[0]).toStartWith('https://hooks.slack.com/');
    }
    const audit = await (await call(harness.gateway, 'GET', '/v1/audit-logs?type=admin&period=today')).text();
    expect(audit).toContain('/v1/reconciliation/settings');
    expect(audit).not.toContain('ReconSlackSecretToken0001');
    const echoed = (got.body.settings as { notify: string[] }).notify;
    const refused = await expectSpecError(await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { notify: echoed }), 400, 'invalid_field');
    expect(refused.error.param).toBe('notify[0]');
    await call(harness.gateway, 'PUT', '/v1/reconciliation/settings', { notify: [] });
  });

  test('accounts are isolated, and only admins may read or change reconciliation', async () => {
    const created = await harness.read(await call(harness.gateway, 'POST', '/v1/accounts', { name: 'isolated' }));
    const other = accountAdminKey(created.body);
    const listed = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/admin-keys', undefined, { key: other }));
    expect(listed.body.admin_keys).toEqual([]);
    const { body } = await report('period=today', other);
    expect(body.rows).toEqual([]);
    expect((body.providers as Array<{ status: string }>).map((entry) => entry.status)).toEqual(['not_configured', 'not_configured']);
    await expectSpecError(await call(harness.gateway, 'DELETE', '/v1/reconciliation/admin-keys/openai', undefined, { key: other }), 404, 'not_found');
    // The default account's key is still there.
    const mine = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/admin-keys'));
    expect((mine.body.admin_keys as unknown[]).length).toBe(2);

    const developer = await harness.read(await call(harness.gateway, 'POST', '/v1/keys', { role: 'developer', name: 'dev' }, { key: other }));
    const developerKey = String(developer.body.api_key);
    await expectSpecError(
      await call(harness.gateway, 'GET', '/v1/analytics/reconciliation?period=today', undefined, { key: developerKey }),
      403,
      'permission_denied',
    );
    await expectSpecError(await call(harness.gateway, 'GET', '/v1/reconciliation/admin-keys', undefined, { key: '' }), 401, 'invalid_api_key');
  });

  test('delete removes the key', async () => {
    const created = await harness.read(await call(harness.gateway, 'POST', '/v1/accounts', { name: 'deleting' }));
    const key = accountAdminKey(created.body);
    await call(
      harness.gateway,
      'PUT',
      '/v1/reconciliation/admin-keys',
      { provider: 'anthropic', admin_key: 'sk-ant-admin01-DeleteMeDeleteMe0123456789', verify: false },
      { key },
    );
    const removed = await call(harness.gateway, 'DELETE', '/v1/reconciliation/admin-keys/anthropic', undefined, { key });
    expect(removed.status).toBe(204);
    const listed = await harness.read(await call(harness.gateway, 'GET', '/v1/reconciliation/admin-keys', undefined, { key }));
    expect(listed.body.admin_keys).toEqual([]);
    // The audit entry says which key was removed: masked, with its fingerprint, never the key.
    await flushUsage(harness.gateway);
    const events = await readAllEvents(harness.gateway, 'type=admin&period=today', key, harness.answers);
    const deletion = events.find((event) => event.action === 'DELETE /v1/reconciliation/admin-keys/:provider' && event.status === 204);
    expect(deletion?.before).toMatchObject({ provider: 'anthropic', masked_key: expect.any(String), fingerprint: expect.any(String) });
    expect(JSON.stringify(deletion)).not.toContain('DeleteMeDeleteMe0123456789');
  });

  test('canary: no admin key in any answer, log line or database file', async () => {
    await flushUsage(harness.gateway);
    const canaries = [
      OPENAI_SIM_ADMIN_KEY,
      ANTHROPIC_SIM_ADMIN_KEY,
      'RevokedRevokedRevoked0123456789',
      'DeleteMeDeleteMe0123456789',
      OPENAI_KEY,
      ANTHROPIC_KEY,
    ];
    const answers = harness.answers.join('\n');
    const logs = harness.gateway.output.join('\n');
    const files = readdirSync(harness.gateway.dataDirectory)
      .filter((name) => name.startsWith('keyway.db'))
      .map((name) => readFileSync(join(harness.gateway.dataDirectory, name)).toString('latin1'))
      .join('\n');
    expect(files.length).toBeGreaterThan(0);
    expect(files).toContain('reconciliation_admin_keys');
    for (const canary of canaries) {
      expect(answers).not.toContain(canary);
      expect(logs).not.toContain(canary);
      expect(files).not.toContain(canary);
    }
  });
});
