// A team that lists providers may use only those, so "cap Anthropic at $1" on a team that listed none
// shut out its OpenAI and Google traffic without a word (QA14 #4). POST /v1/teams and PATCH
// /v1/teams/{id} now answer `warnings` naming the providers with keys the list shuts the team out of,
// and how to allow one; a list that shuts out nothing that matters answers none.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { excludedProviders, providerListWarnings } from '../../plugins/teams/provider-warnings.ts';
import type { TeamPermissions } from '../../plugins/teams/types.ts';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const keyed = { account: new Set(['openai', 'anthropic', 'google']), platform: new Set(['cohere']) };
const anthropicOnly: TeamPermissions = { providers: { anthropic: { enabled: true, max_cost_per_day: 1 } } };

describe('which providers a list shuts out', () => {
  test('a new team: the providers with keys of the account it does not list', () => {
    expect(excludedProviders(anthropicOnly, keyed)).toEqual({ newly: [], still: ['google', 'openai'] });
  });

  test('a change: those the team could use before (platform keys too) are newly shut out', () => {
    expect(excludedProviders(anthropicOnly, keyed, { providers: {} })).toEqual({ newly: ['cohere', 'google', 'openai'], still: [] });
    expect(excludedProviders(anthropicOnly, keyed, { providers: { anthropic: { enabled: true }, openai: { enabled: true } } })).toEqual({
      newly: ['openai'],
      still: ['google'],
    });
  });

  test('no list, a list naming every keyed provider, or a provider turned off on purpose: nothing', () => {
    expect(excludedProviders({ providers: {} }, keyed)).toEqual({ newly: [], still: [] });
    expect(excludedProviders({}, keyed, { providers: {} })).toEqual({ newly: [], still: [] });
    const every: TeamPermissions = {
      providers: { anthropic: { enabled: true }, openai: { enabled: true }, google: { enabled: false }, cohere: { enabled: true } },
    };
    expect(excludedProviders(every, keyed, { providers: {} })).toEqual({ newly: [], still: [] });
    expect(providerListWarnings(every, keyed, { providers: {} })).toEqual([]);
  });

  test('the warning says what the list allows, what it shuts out, which have keys, and how to allow one', () => {
    const [warning] = providerListWarnings(anthropicOnly, keyed, { providers: { anthropic: { enabled: true }, openai: { enabled: true } } });
    expect(warning).toBe(
      'byok_permissions.providers lists only anthropic, and a team that lists providers may use only those: this team can no longer use openai, ' +
        'and it cannot use google. This account has keys for openai and google. ' +
        'To allow a provider, list it: "openai": {} (an entry without rules allows all of its models, with no budget).',
    );
  });
});

describe('POST and PATCH /v1/teams answer warnings', () => {
  let gateway: TestGateway;
  let adminKey: string;

  beforeAll(async () => {
    gateway = await startTestGateway({ probes: false, logLevel: 'warn' });
    adminKey = gateway.defaultAdminKey;
    await addProviderKeys(
      gateway,
      [
        { name: 'openai', api_key: 'sk-proj-WarningsTestOpenAIKey0000000000001' },
        { name: 'anthropic', api_key: 'sk-ant-api03-WarningsTestAnthropicKey000000001' },
        { name: 'google', api_key: 'AIzaSyWarningsTestGoogleKey0000000000001' },
      ],
      adminKey,
    );
  });
  afterAll(async () => {
    await gateway.stop();
  });

  const create = async (providers: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const response = await call(gateway, 'POST', '/v1/teams', { name: 'Search team', byok_permissions: { providers } }, { key: adminKey });
    expect(response.status).toBe(201);
    return (await response.json()) as Record<string, unknown>;
  };
  const patch = async (id: string, body: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const response = await call(gateway, 'PATCH', `/v1/teams/${id}`, body, { key: adminKey });
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  };

  test('a team that lists no provider gets none; capping one provider then warns what else it loses', async () => {
    const open = await create({});
    expect(open.warnings).toBeUndefined();
    const capped = await patch(open.id as string, { byok_permissions: { providers: { anthropic: { max_cost_per_day: 1 } } } });
    // The change stands (the documented rule), and says so.
    expect(Object.keys((capped.byok_permissions as { providers: object }).providers)).toEqual(['anthropic']);
    const warnings = capped.warnings as string[];
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toContain('lists only anthropic');
    expect(warnings[0]).toContain('this team can no longer use google and openai');
    expect(warnings[0]).toContain('To allow a provider, list it: "google": {}');
    // Allowing them again answers no warning; a patch that leaves the list alone answers none either.
    const allowed = await patch(open.id as string, { byok_permissions: { providers: { openai: {}, google: {} } } });
    expect(allowed.warnings).toBeUndefined();
    const renamed = await patch(open.id as string, { name: 'Renamed team' });
    expect(renamed.warnings).toBeUndefined();
    // The team as GET shows it carries no warnings: they belong to the write's answer.
    const read = (await (await call(gateway, 'GET', `/v1/teams/${open.id}`, undefined, { key: adminKey })).json()) as Record<string, unknown>;
    expect(read.warnings).toBeUndefined();
  });

  test('a new team listing one provider is told which keyed providers it cannot use', async () => {
    const team = await create({ openai: { max_cost_per_day: 5 }, google: { enabled: false } });
    const warnings = team.warnings as string[];
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toContain('lists only openai');
    expect(warnings[0]).toContain('this team cannot use anthropic');
    expect(warnings[0]).not.toContain('google');
  });
});
