// The compliance block: the seed's `byok_compliance` accepted as printed (and bare), validated, stored,
// and answered with whether the running system meets each setting; an unmet one fires a `compliance`
// alert and nothing is deleted.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from 'bun:sqlite';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AlertEvent, PluginDefinition } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { Compliance } from '../../plugins/audit/compliance.ts';
import { ComplianceTargets, COMPLIANCE_TARGETS_SECTION, type ComplianceTargetsSection } from '../../plugins/audit/compliance-targets.ts';
import { complianceOf } from '../../plugins/audit/schema.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { addProviderKeys, call, expectSpecError, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { SEED_TEAM } from '../helpers/seed-team.ts';

/** The seed's "Compliance-focused configuration", with Python's True written as JSON. */
const SEED_COMPLIANCE = {
  byok_compliance: {
    data_residency: 'never_store_keys',
    audit_logging: 'all_requests',
    encryption: 'FIPS-140-2',
    key_access_logs: true,
  },
};
const PROVIDER_KEY = 'sk-proj-COMPLIANCExPROVIDERxKEY0123456789abcd';

/** An alert channel that keeps what it was sent, for targets `recorder:<name>`. */
const delivered: Array<{ event: AlertEvent; target: string }> = [];
const recorderChannel: PluginDefinition = {
  name: 'test-alert-recorder',
  version: '1.0.0',
  apiVersion: 1,
  kind: 'alert-channel',
  setup: () => ({
    alertChannel: {
      name: 'test-alert-recorder',
      accepts: (target) => target.startsWith('recorder:'),
      send: async (event, target) => void delivered.push({ event, target }),
    },
  }),
};

let simulator: SimulatorHandle;
let gateway: TestGateway;
let storedKeyIds: string[] = [];

interface ReportEntry {
  value: unknown;
  met: boolean;
  action?: string;
  note?: string;
  stored_key_ids?: string[];
}
interface ComplianceAnswer {
  byok_compliance: Record<string, unknown>;
  met: boolean;
  report: Record<string, ReportEntry>;
  alert: { type: string; unmet: string[]; targets: string[] } | null;
}

beforeAll(async () => {
  simulator = startOpenAISimulator({ apiKeys: [PROVIDER_KEY] });
  gateway = await startTestGateway({
    probes: false,
    env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1` },
    extraPlugins: [{ definition: recorderChannel, source: 'test' }],
  });
  storedKeyIds = (await addProviderKeys(gateway, [{ name: 'openai', api_key: PROVIDER_KEY }], gateway.defaultAdminKey)).map((key) => String(key.key_id));
});

afterAll(async () => {
  await gateway.stop();
  await simulator.stop();
});

describe('PUT /v1/settings/compliance', () => {
  test("the seed's block as printed is stored and answered with a report per setting", async () => {
    const response = await call(gateway, 'PUT', '/v1/settings/compliance', SEED_COMPLIANCE, { key: gateway.defaultAdminKey });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as ComplianceAnswer;
    expect(answer.byok_compliance).toMatchObject(SEED_COMPLIANCE.byok_compliance);
    expect(answer.met).toBe(false);
    // Stored provider keys exist under never_store_keys: not met, the keys to convert named, none deleted.
    expect(answer.report.data_residency).toMatchObject({ value: 'never_store_keys', met: false, stored_key_ids: storedKeyIds });
    expect(answer.report.data_residency?.action).toContain('Nothing was deleted');
    // crypto-local declares that it is not a validated module.
    expect(answer.report.encryption).toMatchObject({ value: 'FIPS-140-2', met: false });
    expect(answer.report.encryption?.action).toContain('validated module');
    expect(answer.report.audit_logging).toMatchObject({ value: 'all_requests', met: true });
    expect(answer.report.key_access_logs).toMatchObject({ value: true, met: true });
    expect(answer.alert).toMatchObject({ type: 'compliance', unmet: ['data_residency', 'encryption'] });
    const providers = (await (await call(gateway, 'GET', '/v1/providers', undefined, { key: gateway.defaultAdminKey })).json()) as {
      providers: Array<{ key_id: string }>;
    };
    expect(providers.providers.map((provider) => provider.key_id)).toEqual(storedKeyIds);
  });

  test('GET answers the stored block and the same report', async () => {
    const answer = (await (await call(gateway, 'GET', '/v1/settings/compliance', undefined, { key: gateway.defaultAdminKey })).json()) as ComplianceAnswer;
    expect(answer.byok_compliance).toMatchObject({ ...SEED_COMPLIANCE.byok_compliance, audit_retention_days: 365 });
    expect(answer.report.data_residency?.met).toBe(false);
    expect(answer.report.encryption?.met).toBe(false);
    const settings = (await (await call(gateway, 'GET', '/v1/settings', undefined, { key: gateway.defaultAdminKey })).json()) as Record<string, unknown>;
    expect(JSON.stringify(settings)).toContain('never_store_keys');
  });

  test('the bare block is accepted too, and replaces the stored one', async () => {
    const response = await call(
      gateway,
      'PUT',
      '/v1/settings/compliance',
      { audit_logging: 'admin_actions', audit_retention_days: 90 },
      { key: gateway.defaultAdminKey },
    );
    expect(response.status).toBe(200);
    const answer = (await response.json()) as ComplianceAnswer;
    expect(answer.byok_compliance).toMatchObject({
      data_residency: 'store_encrypted',
      audit_logging: 'admin_actions',
      encryption: 'AES-256-GCM',
      key_access_logs: false,
      audit_retention_days: 90,
    });
    expect(answer.met).toBe(true);
    expect(answer.alert).toBeNull();
  });

  test('an unmet setting fires a compliance alert to the block’s notify targets, without a key in it', async () => {
    delivered.length = 0;
    const body = { byok_compliance: { ...SEED_COMPLIANCE.byok_compliance, notify: ['recorder:security'] } };
    const response = await call(gateway, 'PUT', '/v1/settings/compliance', body, { key: gateway.defaultAdminKey });
    expect(response.status).toBe(200);
    for (let wait = 0; wait < 50 && delivered.length === 0; wait++) await Bun.sleep(10);
    expect(delivered.length).toBe(1);
    const [delivery] = delivered;
    expect(delivery?.target).toBe('recorder:security');
    expect(delivery?.event).toMatchObject({ type: 'compliance', accountId: 'default' });
    expect((delivery?.event.details.data_residency as { stored_key_ids: string[] }).stored_key_ids).toEqual(storedKeyIds);
    expect(JSON.stringify(delivery?.event)).not.toContain(PROVIDER_KEY);
  });

  test('never_store_keys is met for an account that stores no provider key', async () => {
    const created = (await (await call(gateway, 'POST', '/v1/accounts', { name: 'Keyless' })).json()) as { admin_key: { api_key: string } };
    const response = await call(gateway, 'PUT', '/v1/settings/compliance', { data_residency: 'never_store_keys' }, { key: created.admin_key.api_key });
    const answer = (await response.json()) as ComplianceAnswer;
    expect(answer.report.data_residency).toMatchObject({ value: 'never_store_keys', met: true });
    expect(answer.met).toBe(true);
  });

  test.each([
    [{ byok_compliance: { encryption: 'ROT13' } }, 'byok_compliance.encryption'],
    [{ data_residency: 'anywhere' }, 'data_residency'],
    [{ audit_logging: 'everything' }, 'audit_logging'],
    [{ key_access_logs: 'yes' }, 'key_access_logs'],
    [{ audit_retention_days: 0 }, 'audit_retention_days'],
    [{ byok_compliance: { key_access_logs: true }, extra: 1 }, 'extra'],
    [{ prompts: 'store' }, 'prompts'],
    // Targets an alert rule would refuse: no channel delivers to them, or Keyway may not call them.
    [{ byok_compliance: { notify: ['security@company.com', 'http://internal.example/hook'] } }, 'byok_compliance.notify[1]'],
    [{ notify: ['a@b'] }, 'notify[0]'],
    [{ notify: ['https://169.254.169.254/latest/meta-data/'] }, 'notify[0]'],
  ])('%j is refused with 400 naming the field', async (body, param) => {
    const response = await call(gateway, 'PUT', '/v1/settings/compliance', body, { key: gateway.defaultAdminKey });
    const error = await expectSpecError(response, 400, 'invalid_field');
    expect(error.error.param).toBe(param);
  });

  test('notify URLs are answered masked; a masked target PUT back keeps the stored one, any other is refused', async () => {
    const slack = 'https://hooks.slack.com/services/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0';
    const admin = { key: gateway.defaultAdminKey };
    const put = await call(gateway, 'PUT', '/v1/settings/compliance', { notify: ['security@company.com', slack] }, admin);
    expect(put.status).toBe(200);
    const putText = await put.text();
    expect(putText).not.toContain('CanaryComplianceSecret');
    const got = await call(gateway, 'GET', '/v1/settings/compliance', undefined, admin);
    const answer = (await got.json()) as { byok_compliance: { notify: string[] } };
    expect(JSON.stringify(answer)).not.toContain('CanaryComplianceSecret');
    expect(answer.byok_compliance.notify[0]).toBe('security@company.com');
    expect(answer.byok_compliance.notify[1]).toContain('…');
    // The read-modify-write round trip: the masked form stands for the stored URL.
    const roundTrip = await call(gateway, 'PUT', '/v1/settings/compliance', { ...answer.byok_compliance, audit_retention_days: 400 }, admin);
    expect(roundTrip.status).toBe(200);
    // Held opened in memory; the settings keep the block without them (they are stored sealed apart).
    const { snapshot } = gateway.runtime.services;
    expect(snapshot.section<ComplianceTargetsSection>(COMPLIANCE_TARGETS_SECTION)?.get('default')).toEqual(['security@company.com', slack]);
    expect(snapshot.current.accounts.get('default')?.settings.compliance).not.toHaveProperty('notify');
    const forged = await call(gateway, 'PUT', '/v1/settings/compliance', { notify: ['https://hooks.slack.com/ser…/…'] }, admin);
    expect((await expectSpecError(forged, 400, 'invalid_field')).error.param).toBe('notify[0]');
  });

  test('the audit entry holds the whole block before and after, so a PUT of one field shows what it reset', async () => {
    const admin = { key: gateway.defaultAdminKey };
    const slack = 'https://hooks.slack.com/services/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0';
    // Every setting met, so no alert goes out to the Slack URL.
    const strict = { audit_logging: 'all_requests', key_access_logs: true, log_all_requests: true, notify: [slack] };
    expect((await call(gateway, 'PUT', '/v1/settings/compliance', { byok_compliance: strict }, admin)).status).toBe(200);
    const downgrade = await call(gateway, 'PUT', '/v1/settings/compliance', { byok_compliance: { audit_retention_days: 30 } }, admin);
    expect(downgrade.status).toBe(200);
    const events = (await (await call(gateway, 'GET', '/v1/audit-logs?type=admin&period=today&limit=500', undefined, admin)).json()) as {
      events: Array<{ request_id: string; before: unknown; after: unknown }>;
    };
    const entry = events.events.find((event) => event.request_id === downgrade.headers.get('x-request-id'));
    const masked = (await (await call(gateway, 'GET', '/v1/settings/compliance', undefined, admin)).json()) as ComplianceAnswer;
    expect(entry?.after).toEqual(masked.byok_compliance);
    expect(entry?.after).toEqual({
      data_residency: 'store_encrypted',
      audit_logging: 'admin_actions',
      encryption: 'AES-256-GCM',
      key_access_logs: false,
      log_all_requests: false,
      audit_retention_days: 30,
      notify: [],
    });
    // What was turned off, with the stored target masked as GET answers it.
    expect(entry?.before).toEqual({
      data_residency: 'store_encrypted',
      encryption: 'AES-256-GCM',
      ...strict,
      audit_retention_days: 365,
      notify: [expect.stringContaining('…')],
    });
    expect(JSON.stringify(entry)).not.toContain('CanaryAuditBeforeSecret');
  });

  test('a body that is not JSON, or not an object, is a 400', async () => {
    await expectSpecError(await call(gateway, 'PUT', '/v1/settings/compliance', '{not json', { key: gateway.defaultAdminKey }), 400, 'invalid_json');
    const array = await call(gateway, 'PUT', '/v1/settings/compliance', [1, 2], { key: gateway.defaultAdminKey });
    expect(array.status).toBe(400);
  });

  test('team member keys and viewers may not change it', async () => {
    const team = (await (await call(gateway, 'POST', '/v1/teams', SEED_TEAM, { key: gateway.defaultAdminKey })).json()) as {
      members: Array<{ api_key: string }>;
    };
    for (const member of team.members) {
      const response = await call(gateway, 'PUT', '/v1/settings/compliance', SEED_COMPLIANCE, { key: member.api_key });
      expect(response.status).toBe(403);
    }
  });
});

describe('FIPS-140-2 is met only with a backend that declares a validated module', () => {
  function servicesWith(validatedModule: { validated: boolean; standard?: string; certificate?: string; description: string } | undefined): Services {
    const settings = { compliance: { encryption: 'FIPS-140-2' } };
    return {
      crypto: { name: 'kms-test', validatedModule },
      snapshot: { current: { accounts: new Map([['acc', { id: 'acc', name: 'acc', settings }]]) } },
      store: { listActiveProviderKeys: async () => [] },
    } as unknown as Services;
  }

  test.each([
    [undefined, false],
    [{ validated: false, description: 'software' }, false],
    [{ validated: true, standard: 'FIPS 140-2', certificate: '#4407', description: 'a validated module' }, true],
  ])('declaration %j → met %p', async (declaration, met) => {
    const services = servicesWith(declaration);
    const compliance = new Compliance(services, 365, new ComplianceTargets(services));
    const report = await compliance.report('acc', complianceOf({ compliance: { encryption: 'FIPS-140-2' } }, 365));
    expect(report.encryption.met).toBe(met);
  });
});

describe('shutdown', () => {
  test('events still queued (key access: the request path only queues) are written before the store closes', async () => {
    const own = await startTestGateway({ probes: false, env: { KEYWAY_OPENAI_BASE_URL: `${simulator.url}/v1`, KEYWAY_AUDIT_FLUSH_MS: '600000' } });
    const readRows = () => {
      const database = new Database(join(own.dataDirectory, 'keyway.db'), { readonly: true });
      try {
        return database.query('SELECT type, action FROM audit_events ORDER BY id').all() as Array<{ type: string; action: string }>;
      } finally {
        database.close();
      }
    };
    try {
      await addProviderKeys(own, [{ name: 'openai', api_key: PROVIDER_KEY }], own.defaultAdminKey);
      expect((await call(own, 'PUT', '/v1/settings/compliance', { key_access_logs: true }, { key: own.defaultAdminKey })).status).toBe(200);
      const chat = await call(
        own,
        'POST',
        '/v1/chat/completions',
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
        { key: own.defaultAdminKey },
      );
      expect(chat.status).toBe(200);
      await chat.text();
      // Admin events are written before their answer; the key access event waits in the queue.
      expect(readRows().map((row) => row.type)).toEqual(['admin', 'admin']);
      await own.server.stop();
      expect(readRows().map((row) => `${row.type} ${row.action}`)).toEqual([
        'admin POST /v1/providers/keys',
        'admin PUT /v1/settings/compliance',
        'key_access provider_key.decrypt',
        'key_access provider_key.use',
      ]);
    } finally {
      rmSync(own.dataDirectory, { recursive: true, force: true });
    }
  });
});
