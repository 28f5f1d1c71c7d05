import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import type { RouteCandidate } from '../../core/spec/plugin.ts';
import { providerAccessPolicy } from '../../policies/provider-access/index.ts';
import { compileAllowlist } from '../../core/wire/glob.ts';
import type { TeamPermissions } from '../../plugins/teams/types.ts';
import { context, contributionsOf, hooksOf, key, keyMap, principal, refusalOf, teamsSection } from './helpers.ts';

const SEED: TeamPermissions = {
  providers: {
    openai: { enabled: true, models: ['gpt-4-turbo-preview', 'gpt-3.5-turbo'], max_cost_per_day: 100, require_approval_above: 10 },
    anthropic: { enabled: true, models: ['claude-3-sonnet-20240229'], max_cost_per_day: 50 },
    google: { enabled: false },
  },
};

const KEYS = [key('pk_openai', 'openai'), key('pk_anthropic', 'anthropic'), key('pk_google', 'google'), key('pk_google_platform', 'google', {}, 'platform')];

function candidate(provider: string, model: string): RouteCandidate {
  return { provider, model, key: key(`pk_${provider}`, provider) };
}

describe('provider-access: keyResolve', () => {
  test('a disabled provider loses its account and platform keys; the others are kept', async () => {
    const hooks = await hooksOf(providerAccessPolicy, teamsSection(SEED));
    const request = context();
    request.keys = { account: keyMap(KEYS.filter((entry) => entry.owner === 'account')), platform: keyMap(KEYS.filter((entry) => entry.owner === 'platform')) };
    await hooks.keyResolve?.(request);
    expect([...(request.keys?.account.keys() ?? [])].sort()).toEqual(['anthropic', 'openai']);
    expect([...(request.keys?.platform.keys() ?? [])]).toEqual([]);
  });

  test('a request for no team, or a team that lists no provider, keeps the very same keys', async () => {
    for (const [section, teamId] of [
      [teamsSection(SEED), undefined],
      [teamsSection({}), 'team_test'],
      [teamsSection({ providers: {} }), 'team_test'],
    ] as const) {
      const hooks = await hooksOf(providerAccessPolicy, section);
      const request = context({ principal: { teamId } });
      const keys = { account: keyMap(KEYS), platform: new Map() };
      request.keys = keys;
      await hooks.keyResolve?.(request);
      expect(request.keys).toBe(keys);
    }
  });

  test("another account's team is not applied", async () => {
    const hooks = await hooksOf(providerAccessPolicy, teamsSection(SEED, 'acct_other'));
    const request = context();
    const keys = { account: keyMap(KEYS), platform: new Map() };
    request.keys = keys;
    await hooks.keyResolve?.(request);
    expect(request.keys).toBe(keys);
  });
});

describe('provider-access: route', () => {
  test('candidates of models the team does not list are dropped; fallback keeps the allowed ones', async () => {
    const hooks = await hooksOf(providerAccessPolicy, teamsSection(SEED));
    const request = context();
    request.resolution = { provider: 'openai', model: 'gpt-3.5-turbo', explicit: false };
    request.candidates = [
      candidate('openai', 'gpt-3.5-turbo'),
      candidate('openai', 'gpt-4o'),
      candidate('anthropic', 'claude-3-sonnet-20240229'),
      candidate('anthropic', 'claude-3-opus-20240229'),
    ];
    await hooks.route?.(request);
    expect(request.candidates.map((entry) => `${entry.provider}/${entry.model}`)).toEqual(['openai/gpt-3.5-turbo', 'anthropic/claude-3-sonnet-20240229']);
  });

  test('an allowed model whose only planned candidates are disallowed substitutes: the 403 names those, not the model', async () => {
    const hooks = await hooksOf(providerAccessPolicy, teamsSection(SEED));
    const request = context();
    request.resolution = { provider: 'anthropic', model: 'claude-3-sonnet-20240229', explicit: false };
    // What a platform-only order plans when the platform holds no anthropic key: a class member elsewhere.
    request.candidates = [candidate('openai', 'gpt-5-mini')];
    const refused = await Promise.resolve()
      .then(() => hooks.route?.(request))
      .then(
        () => undefined,
        (error: unknown) => error as { code: string; message: string },
      );
    expect(refused?.code).toBe('model_not_allowed');
    expect(refused?.message).toContain('gpt-5-mini on openai');
    expect(refused?.message).not.toContain('may not use the model');
  });

  test('the model the client named is judged first: no substitute answers a request for a model the team does not allow', async () => {
    const hooks = await hooksOf(providerAccessPolicy, teamsSection(SEED));
    for (const [resolution, code] of [
      [{ provider: 'anthropic', model: 'claude-3-opus-20240229', explicit: false }, 'model_not_allowed'],
      [{ provider: 'google', model: 'gemini-pro', explicit: false }, 'provider_not_allowed'],
    ] as const) {
      const request = context();
      request.resolution = resolution;
      // What cost_optimized plans for either: allowed class members of other providers.
      request.candidates = [candidate('openai', 'gpt-4-turbo-preview'), candidate('anthropic', 'claude-3-sonnet-20240229')];
      const refused = await Promise.resolve()
        .then(() => hooks.route?.(request))
        .then(
          () => undefined,
          (error: unknown) => error as { code: string; status: number },
        );
      expect({ model: resolution.model, code: refused?.code, status: refused?.status }).toEqual({ model: resolution.model, code, status: 403 });
    }
  });

  test('no allowed candidate left: 403 model_not_allowed naming the model', async () => {
    const hooks = await hooksOf(providerAccessPolicy, teamsSection(SEED));
    const request = context();
    request.resolution = { provider: 'openai', model: 'gpt-4o', explicit: false };
    request.candidates = [candidate('openai', 'gpt-4o')];
    let message = '';
    try {
      await hooks.route?.(request);
    } catch (error) {
      message = (error as Error).message;
      expect((error as { code: string }).code).toBe('model_not_allowed');
      expect((error as { status: number }).status).toBe(403);
    }
    expect(message).toContain("'gpt-4o'");
  });

  test('a request naming only a disabled provider: 403 provider_not_allowed', async () => {
    const hooks = await hooksOf(providerAccessPolicy, teamsSection(SEED));
    const request = context({ body: { model: 'gemini-1.5-pro' } });
    request.resolution = { provider: 'google', model: 'gemini-1.5-pro', explicit: false };
    request.candidates = [];
    expect(await refusalOf(() => hooks.route?.(request))).toBe('provider_not_allowed');
  });

  test('nothing planned for another reason (no key): the core answers, not the policy', async () => {
    const hooks = await hooksOf(providerAccessPolicy, teamsSection(SEED));
    const request = context({ body: { model: 'gpt-3.5-turbo' } });
    request.resolution = { provider: 'openai', model: 'gpt-3.5-turbo', explicit: false };
    request.candidates = [];
    expect(await refusalOf(() => hooks.route?.(request))).toBeUndefined();
  });

  test('a team that lists providers may use those only: a model of another is 403 provider_not_allowed naming the listed ones', async () => {
    const hooks = await hooksOf(providerAccessPolicy, teamsSection(SEED));
    const request = context({ body: { model: 'mistral-large-latest' } });
    request.resolution = { provider: 'mistral', model: 'mistral-large-latest', explicit: false };
    request.candidates = [candidate('mistral', 'mistral-large-latest')];
    const refusal = await refusalOf(() => hooks.route?.(request));
    expect(refusal).toBe('provider_not_allowed');
  });

  test("an unlisted provider's keys are dropped at keyResolve, and its substitutes at route: cost routing cannot leave the team's providers", async () => {
    const hooks = await hooksOf(providerAccessPolicy, teamsSection(SEED));
    const request = context();
    request.keys = { account: keyMap([...KEYS, key('pk_cohere', 'cohere')]), platform: keyMap([key('pk_cohere_platform', 'cohere', {}, 'platform')]) };
    await hooks.keyResolve?.(request);
    expect([...(request.keys?.account.keys() ?? [])].sort()).toEqual(['anthropic', 'openai']);
    expect([...(request.keys?.platform.keys() ?? [])]).toEqual([]);
    request.resolution = { provider: 'openai', model: 'gpt-4-turbo-preview', explicit: false };
    request.candidates = [candidate('cohere', 'command-a-03-2025'), candidate('openai', 'gpt-4-turbo-preview')];
    await hooks.route?.(request);
    expect(request.candidates.map((entry) => entry.provider)).toEqual(['openai']);
  });

  test('within a listed provider, its models list rules; globs match', async () => {
    const hooks = await hooksOf(
      providerAccessPolicy,
      teamsSection({ providers: { openai: { enabled: true, models: ['gpt-4o*', 'o3'] }, mistral: { enabled: true } } }),
    );
    const request = context();
    request.resolution = { provider: 'openai', model: 'gpt-4o-mini', explicit: false };
    request.candidates = [candidate('openai', 'gpt-4o-mini'), candidate('openai', 'o3'), candidate('openai', 'o3-mini'), candidate('mistral', 'anything')];
    await hooks.route?.(request);
    expect(request.candidates.map((entry) => entry.model)).toEqual(['gpt-4o-mini', 'o3', 'anything']);
  });
});

describe('provider-access: modelFilter (GET /v1/models)', () => {
  const caller = (overrides: Parameters<typeof principal>[0] = {}, headers: Record<string, string> = {}) => ({
    principal: principal(overrides),
    headers: new Headers(headers),
  });

  test('no team, or a team without provider rules: nothing to narrow', async () => {
    const seeded = await contributionsOf(providerAccessPolicy, teamsSection(SEED));
    expect(seeded?.modelFilter?.(caller({ teamId: undefined }))).toBeUndefined();
    const open = await contributionsOf(providerAccessPolicy, teamsSection({ usage_controls: { require_project_tag: false } }));
    expect(open?.modelFilter?.(caller())).toBeUndefined();
    // Listing a provider, even with every model, narrows the list to it.
    const listed = await contributionsOf(providerAccessPolicy, teamsSection({ providers: { openai: { enabled: true } } }));
    expect(listed?.modelFilter?.(caller())?.('anthropic', 'claude-3-opus')).toBe(false);
    expect(listed?.modelFilter?.(caller())?.('openai', 'gpt-4o')).toBe(true);
    const otherAccount = await contributionsOf(providerAccessPolicy, teamsSection(SEED, 'acct_other'));
    expect(otherAccount?.modelFilter?.(caller())).toBeUndefined();
  });

  test("an admin key's X-Team-ID is the team; a developer key without a team may not name one", async () => {
    const contributions = await contributionsOf(providerAccessPolicy, teamsSection(SEED));
    const acting = contributions?.modelFilter?.(caller({ teamId: undefined, role: 'admin' }, { 'x-team-id': 'team_test' }));
    expect(acting?.('google', 'gemini-pro')).toBe(false);
    expect(acting?.('openai', 'gpt-3.5-turbo')).toBe(true);
    expect(await refusalOf(() => contributions?.modelFilter?.(caller({ teamId: undefined }, { 'x-team-id': 'team_test' })))).toBe('permission_denied');
  });

  // Listing and calling never disagree: for any team rules, a model is listed exactly when a request
  // for it on that provider keeps its key at keyResolve and its candidate at route.
  test('lists exactly what keyResolve and route let through', async () => {
    const providers = ['openai', 'anthropic', 'google'] as const;
    const models = ['gpt-4o', 'gpt-4o-mini', 'gpt-4', 'claude-3-opus', 'x'];
    const entry = fc.oneof(fc.constantFrom(...models), fc.constantFrom('gpt-4*', '*', 'claude-*', '*-mini', 'gpt-4o'));
    const rule = fc.record({ enabled: fc.boolean(), models: fc.option(fc.array(entry, { maxLength: 3 }), { nil: undefined }) });
    const permissions = fc.dictionary(fc.constantFrom(...providers), rule);
    await fc.assert(
      fc.asyncProperty(permissions, fc.constantFrom(...providers), fc.constantFrom(...models), async (rules, provider, model) => {
        const section = teamsSection({ providers: rules });
        const predicate = (await contributionsOf(providerAccessPolicy, section))?.modelFilter?.(caller());
        const listed = predicate === undefined ? true : predicate(provider, model);
        const hooks = await hooksOf(providerAccessPolicy, section);
        const request = context();
        request.keys = { account: keyMap([key(`pk_${provider}`, provider)]), platform: new Map() };
        await hooks.keyResolve?.(request);
        let callable = request.keys.account.has(provider);
        if (callable) {
          request.resolution = { provider, model, explicit: false };
          request.candidates = [candidate(provider, model)];
          callable = (await refusalOf(() => hooks.route?.(request))) === undefined && request.candidates.length === 1;
        }
        expect(listed).toBe(callable);
      }),
      { numRuns: 300 },
    );
  });
});

describe('the glob allow-list', () => {
  const reference = (entries: string[], name: string): boolean =>
    entries.some((entry) =>
      new RegExp(
        `^${entry
          .split('*')
          .map((part) => part.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'))
          .join('.*')}$`,
        's',
      ).test(name),
    );
  // Names and globs over a small alphabet with the regex specials, so matches and near misses are common.
  const alphabet = fc.constantFrom('a', 'b', '-', '.', '/', '(', '[', '?', '+', '\\', '$', '^', '\n');
  const name = fc.array(alphabet, { maxLength: 8 }).map((chars) => chars.join(''));
  const glob = fc.array(fc.oneof(alphabet, fc.constant('*')), { maxLength: 8 }).map((chars) => chars.join(''));

  test('matches exactly what the reference regular expression matches', () => {
    fc.assert(
      fc.property(fc.array(glob, { maxLength: 4 }), fc.array(name, { minLength: 1, maxLength: 6 }), (entries, names) => {
        const allowlist = compileAllowlist(entries);
        for (const candidate of [...names, ...entries]) expect(allowlist.test(candidate)).toBe(reference(entries, candidate));
      }),
      { numRuns: 500 },
    );
  });

  test('examples', () => {
    const allowlist = compileAllowlist(['gpt-4o*', 'claude-*-sonnet-*', 'o1']);
    expect(allowlist.test('gpt-4o')).toBe(true);
    expect(allowlist.test('gpt-4o-mini-2024-07-18')).toBe(true);
    expect(allowlist.test('claude-3-5-sonnet-20241022')).toBe(true);
    expect(allowlist.test('o1')).toBe(true);
    expect(allowlist.test('o1-mini')).toBe(false);
    expect(allowlist.test('gpt-4')).toBe(false);
    expect(compileAllowlist([]).test('gpt-4o')).toBe(false);
  });
});
