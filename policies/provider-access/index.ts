// Team provider and model allow-lists (the seed's `byok_permissions.providers`). A team that lists
// providers may use those only; a provider it does not list, or turns off (`enabled: false`), loses its
// keys at keyResolve, so no strategy or fallback can plan it; a provider's `models` (exact names and `*`
// globs) drops the candidates whose model it does not list at route, after the model the client named
// is judged by the same rule (refuseNamedModel). A team that lists no provider may use every one.
// GET /v1/models lists what the same rule (modelAllowed) lets the team call, through the core's
// `modelFilter` contribution.

import { definePlugin, PLUGIN_API_VERSION, type RequestContext, type ResolvedKeys } from '../../core/spec/plugin.ts';
import type { ProviderKeyRecord } from '../../core/spec/provider.ts';
import type { Services } from '../../core/spec/services.ts';
import type { ModelResolution } from '../../core/spec/strategy.ts';
import { actingTeamOf, teamOf, type TeamPermissions } from '../../plugins/teams/types.ts';
import { compileAllowlist, type Allowlist } from '../../core/wire/glob.ts';

export const PROVIDER_ACCESS_POLICY = 'provider-access';

interface CompiledPermissions {
  disabled: ReadonlySet<string>;
  /**
   * The providers the team lists, when it lists any: the only ones it may use (QA13). A budget or an
   * approval threshold on one provider is a control a cheaper unlisted provider must not route around,
   * and a model allow-list is read as the whole list, as LiteLLM's team `models` are.
   */
  listed: ReadonlySet<string> | undefined;
  /** Providers with a `models` list; a provider absent here allows every model. */
  models: ReadonlyMap<string, Allowlist>;
}

/** Compiled once per permissions object: the teams snapshot replaces the object when a team changes. */
const compiledCache = new WeakMap<TeamPermissions, CompiledPermissions>();

export function compilePermissions(permissions: TeamPermissions): CompiledPermissions {
  let compiled = compiledCache.get(permissions);
  if (compiled !== undefined) return compiled;
  const disabled = new Set<string>();
  const models = new Map<string, Allowlist>();
  const listed = new Set<string>();
  for (const [provider, rule] of Object.entries(permissions.providers ?? {})) {
    if (rule === undefined || rule === null) continue;
    listed.add(provider);
    if (rule.enabled === false) disabled.add(provider);
    if (Array.isArray(rule.models)) models.set(provider, compileAllowlist(rule.models));
  }
  compiled = { disabled, models, listed: listed.size === 0 ? undefined : listed };
  compiledCache.set(permissions, compiled);
  return compiled;
}

/** Whether the team may use `provider` at all: listed (when it lists any) and not turned off. */
export function providerAllowed(compiled: Pick<CompiledPermissions, 'disabled' | 'listed'>, provider: string): boolean {
  return !compiled.disabled.has(provider) && (compiled.listed === undefined || compiled.listed.has(provider));
}

function withoutProviders(
  map: ReadonlyMap<string, readonly ProviderKeyRecord[]>,
  compiled: Pick<CompiledPermissions, 'disabled' | 'listed'>,
): ReadonlyMap<string, readonly ProviderKeyRecord[]> {
  let narrowed: Map<string, readonly ProviderKeyRecord[]> | undefined;
  for (const provider of map.keys()) {
    if (providerAllowed(compiled, provider)) continue;
    narrowed ??= new Map(map);
    narrowed.delete(provider);
  }
  return narrowed ?? map;
}

/** The keys of the providers the team may use only (account and platform keys alike). */
export function narrowKeys(keys: ResolvedKeys, compiled: Pick<CompiledPermissions, 'disabled' | 'listed'>): ResolvedKeys {
  if (compiled.disabled.size === 0 && compiled.listed === undefined) return keys;
  const account = withoutProviders(keys.account, compiled);
  const platform = withoutProviders(keys.platform, compiled);
  return account === keys.account && platform === keys.platform ? keys : { account, platform };
}

/** Why the team may not use `provider`, for the refusal. */
function providerRefusal(compiled: CompiledPermissions, provider: string): string {
  if (compiled.disabled.has(provider)) return `This team may not use the provider '${provider}'.`;
  const listed = [...(compiled.listed ?? [])].filter((name) => !compiled.disabled.has(name));
  return `This team may not use the provider '${provider}': its byok_permissions.providers list only ${listed.length === 0 ? 'providers it turned off' : listed.join(', ')}.`;
}

/** Whether the team may use `model` on `provider`. */
export function modelAllowed(compiled: CompiledPermissions, provider: string, model: string): boolean {
  if (!providerAllowed(compiled, provider)) return false;
  const allowlist = compiled.models.get(provider);
  return allowlist === undefined || allowlist.test(model);
}

/**
 * The model the client named is judged before any substitute: a team that limits Anthropic to Sonnet
 * refuses a request for Opus (and one that turns Google off refuses a Gemini model) whatever the
 * strategy, rather than letting cost_optimized or a fallback chain answer it from another provider's
 * class member. So the member learns the rule from the refusal, under every strategy alike. A name
 * that selects no provider, and a model class the client named without a provider (`flagship`: its
 * model on the provider routing chose), are left to the candidates' filter below.
 */
function refuseNamedModel(services: Services, compiled: CompiledPermissions, named: ModelResolution | undefined): void {
  const provider = named?.provider;
  if (named === undefined || provider === undefined || (named.modelClass !== undefined && !named.explicit)) return;
  if (!providerAllowed(compiled, provider)) {
    throw services.errors.create('provider_not_allowed', { detail: providerRefusal(compiled, provider) }, { param: 'model', extra: { provider } });
  }
  if (!modelAllowed(compiled, provider, named.model)) {
    throw services.errors.create(
      'model_not_allowed',
      { detail: `This team may not use the model '${named.model}' on ${provider}.` },
      { param: 'model', extra: { model: named.model } },
    );
  }
}

/** The candidates the team may use: the same array when it may use them all (every member request), so nothing is allocated. */
function allowedCandidates(compiled: CompiledPermissions, planned: RequestContext['candidates']): RequestContext['candidates'] {
  let kept: RequestContext['candidates'] | undefined;
  for (let index = 0; index < planned.length; index++) {
    const candidate = planned[index] as (typeof planned)[number];
    if (modelAllowed(compiled, candidate.provider, candidate.model)) kept?.push(candidate);
    else kept ??= planned.slice(0, index);
  }
  return kept ?? planned;
}

export const providerAccessPolicy = definePlugin({
  name: PROVIDER_ACCESS_POLICY,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'policy',
  description: 'Team provider switches and model allow-lists (byok_permissions.providers): 403 provider_not_allowed / model_not_allowed',
  dependencies: ['teams'],
  setup({ services }) {
    const permissionsOf = (context: RequestContext): CompiledPermissions | undefined => {
      const team = teamOf(services.snapshot, context);
      return team === undefined ? undefined : compilePermissions(team.permissions);
    };
    return {
      // The listing's team is found as the lifecycle finds it (the key's own, or an admin's X-Team-ID,
      // refused alike when it names no team of the account), and judged by the same compiled rule.
      modelFilter({ principal, headers }) {
        const teamId = principal.teamId ?? actingTeamOf(services, principal, headers);
        const team = teamOf(services.snapshot, { teamId, principal });
        if (team === undefined) return undefined;
        const compiled = compilePermissions(team.permissions);
        if (compiled.disabled.size === 0 && compiled.models.size === 0 && compiled.listed === undefined) return undefined;
        return (provider, model) => modelAllowed(compiled, provider, model);
      },
      hooks: {
        keyResolve(context) {
          const compiled = permissionsOf(context);
          if (compiled === undefined || context.keys === undefined) return;
          context.keys = narrowKeys(context.keys, compiled);
        },
        route(context) {
          const compiled = permissionsOf(context);
          if (compiled === undefined) return;
          refuseNamedModel(services, compiled, context.resolution);
          const planned = context.candidates;
          const before = planned.length;
          const kept = allowedCandidates(compiled, planned);
          if (kept !== planned) context.candidates = kept;
          if (kept.length > 0) return;
          const modelClass = context.resolution?.explicit === false ? context.resolution.modelClass : undefined;
          if (modelClass !== undefined) {
            // A class the client named: what it was planned to is what the team may not use.
            if (before === 0) return;
            const refused = [...new Set(planned.map((candidate) => `${candidate.model} on ${candidate.provider}`))].join(', ');
            throw services.errors.create(
              'model_not_allowed',
              { detail: `This team may not use what the routing planned for the model class '${modelClass}': ${refused}.` },
              { param: 'model', extra: { model: context.request.model } },
            );
          }
          const provider = context.resolution?.provider;
          const model = context.resolution?.model ?? context.request.model;
          if (provider !== undefined && !providerAllowed(compiled, provider)) {
            throw services.errors.create('provider_not_allowed', { detail: providerRefusal(compiled, provider) }, { param: 'model', extra: { provider } });
          }
          if (before > 0 && provider !== undefined && modelAllowed(compiled, provider, model)) {
            // The model named is allowed; what the routing could send it to (another provider's substitute) is not.
            const substitutes = [...new Set(planned.map((candidate) => `${candidate.model} on ${candidate.provider}`))].join(', ');
            throw services.errors.create(
              'model_not_allowed',
              { detail: `No key this request may use serves '${model}', and this team may not use what the routing planned instead: ${substitutes}.` },
              { param: 'model', extra: { model } },
            );
          }
          if (before > 0 || (provider !== undefined && !modelAllowed(compiled, provider, model))) {
            const where = provider === undefined ? '' : ` on ${provider}`;
            throw services.errors.create(
              'model_not_allowed',
              { detail: `This team may not use the model '${model}'${where}.` },
              { param: 'model', extra: { model } },
            );
          }
          // Nothing was planned for other reasons (no key, all unavailable): the core's 503 says why.
        },
      },
    };
  },
});

export default providerAccessPolicy;
