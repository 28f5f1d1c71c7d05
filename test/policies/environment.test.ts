import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import type { ProviderKeyRecord } from '../../core/spec/provider.ts';
import { environmentPolicy, keysForEnvironment } from '../../policies/environment/index.ts';
import { context, hooksOf, key, keyMap, refusalOf } from './helpers.ts';

const POOL = [
  key('pk_prod', 'openai', { environment: 'production' }),
  key('pk_stage', 'openai', { environment: 'staging' }),
  key('pk_shared', 'openai'),
  key('pk_anthropic_prod', 'anthropic', { environment: 'production' }),
  key('pk_platform_stage', 'openai', { environment: 'staging' }, 'platform'),
  key('pk_platform_shared', 'anthropic', {}, 'platform'),
];

const ids = (map: ReadonlyMap<string, readonly ProviderKeyRecord[]> | undefined) =>
  [...(map?.values() ?? [])]
    .flat()
    .map((entry) => entry.id)
    .sort();

describe('environment', () => {
  test('a production key uses production and shared keys, account and platform alike', async () => {
    const hooks = await hooksOf(environmentPolicy);
    const request = context({ principal: { environment: 'production' } });
    request.keys = { account: keyMap(POOL.filter((entry) => entry.owner === 'account')), platform: keyMap(POOL.filter((entry) => entry.owner === 'platform')) };
    await hooks.keyResolve?.(request);
    expect(ids(request.keys?.account)).toEqual(['pk_anthropic_prod', 'pk_prod', 'pk_shared']);
    expect(ids(request.keys?.platform)).toEqual(['pk_platform_shared']);
  });

  test('a staging key never sees production keys; a provider left with none disappears', async () => {
    const narrowed = keysForEnvironment({ account: keyMap(POOL.filter((entry) => entry.owner === 'account')), platform: new Map() }, 'staging');
    expect(ids(narrowed.account)).toEqual(['pk_shared', 'pk_stage']);
    expect(narrowed.account.has('anthropic')).toBe(false);
  });

  test('every key of the provider belongs to another environment: 403 provider_not_allowed at route, not a 503', async () => {
    const hooks = await hooksOf(environmentPolicy);
    const request = context({ principal: { environment: 'development' } });
    request.keys = { account: keyMap([POOL[0] as ProviderKeyRecord, POOL[1] as ProviderKeyRecord]), platform: new Map() };
    await hooks.keyResolve?.(request);
    request.resolution = { provider: 'openai', model: 'gpt-4o-mini', explicit: false };
    request.candidates = [];
    expect(await refusalOf(() => hooks.route?.(request))).toBe('provider_not_allowed');
    // A provider this account holds no key for at all is the core's answer.
    request.resolution = { provider: 'google', model: 'gemini-1.5-pro', explicit: false };
    expect(await refusalOf(() => hooks.route?.(request))).toBeUndefined();
  });

  test('keys of the provider left but none planned: no refusal, the core 503 is told which pools were passed over', async () => {
    const hooks = await hooksOf(environmentPolicy);
    const keys = { account: keyMap(POOL.filter((entry) => entry.owner === 'account')), platform: keyMap(POOL.filter((entry) => entry.owner === 'platform')) };
    const request = context({ principal: { environment: 'production' } });
    request.keys = keys;
    await hooks.keyResolve?.(request);
    request.resolution = { provider: 'openai', model: 'gpt-4o-mini', explicit: false };
    request.candidates = [];
    expect(await refusalOf(() => hooks.route?.(request))).toBeUndefined();
    expect(request.passedOver).toEqual([
      "This account's and the platform's openai keys of another environment than this API key's ('production') were passed over: keys of other environments are never used.",
    ]);
    // Nothing of anthropic was passed over for a production key: nothing to add.
    const anthropic = context({ principal: { environment: 'production' } });
    anthropic.keys = keys;
    await hooks.keyResolve?.(anthropic);
    anthropic.resolution = { provider: 'anthropic', model: 'claude-3-haiku-20240307', explicit: false };
    anthropic.candidates = [];
    await hooks.route?.(anthropic);
    expect(anthropic.passedOver).toBeUndefined();
  });

  test('a gateway key without an environment uses every key, unchanged', async () => {
    const keys = { account: keyMap(POOL), platform: new Map() };
    expect(keysForEnvironment(keys, undefined)).toBe(keys);
  });

  test('narrowing is cached per snapshot map', () => {
    const keys = { account: keyMap(POOL), platform: new Map() };
    expect(keysForEnvironment(keys, 'staging').account).toBe(keysForEnvironment(keys, 'staging').account);
  });

  test('property: a gateway key of environment A never gets a key of another environment, fallbacks included', () => {
    const environment = fc.constantFrom<string | undefined>('production', 'staging', 'development', undefined);
    const record = fc.record({
      provider: fc.constantFrom('openai', 'anthropic', 'google'),
      environment,
      owner: fc.constantFrom<'account' | 'platform'>('account', 'platform'),
    });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 20 }), fc.constantFrom<string>('production', 'staging', 'development'), (records, mine) => {
        const pool = records.map((entry, index) =>
          key(`pk_${index}`, entry.provider, entry.environment === undefined ? {} : { environment: entry.environment }, entry.owner),
        );
        const keys = {
          account: keyMap(pool.filter((entry) => entry.owner === 'account')),
          platform: keyMap(pool.filter((entry) => entry.owner === 'platform')),
        };
        const narrowed = keysForEnvironment(keys, mine);
        const kept = [...narrowed.account.values(), ...narrowed.platform.values()].flat();
        for (const entry of kept) expect([undefined, mine]).toContain(entry.settings.environment as string | undefined);
        // Nothing usable is lost: every shared or same-environment key is still there, under its provider.
        const usable = pool.filter((entry) => entry.settings.environment === undefined || entry.settings.environment === mine);
        expect(kept.map((entry) => entry.id).sort()).toEqual(usable.map((entry) => entry.id).sort());
        for (const [provider, list] of [...narrowed.account, ...narrowed.platform]) {
          expect(list.length).toBeGreaterThan(0);
          for (const entry of list) expect(entry.provider).toBe(provider);
        }
      }),
      { numRuns: 500 },
    );
  });
});
