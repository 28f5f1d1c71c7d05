// describePolicyConformance for each team policy. The suite drives the operator's key with no team,
// so each policy runs as a renamed copy (the built-in one is already loaded) that, when the request
// carries `x-conformance-team`, acts for a synthetic team of the operator's account with the given
// permissions; the environment policy's copy can also give the caller an environment and label the
// suite's one provider key with another. Everything else is the policy's own code over real HTTP.

import type { Hooks, PluginDefinition, RequestContext } from '../../core/spec/plugin.ts';
import type { ProviderKeyRecord } from '../../core/spec/provider.ts';
import { environmentPolicy } from '../../policies/environment/index.ts';
import { hostedToolsPolicy } from '../../policies/hosted-tools/index.ts';
import { ipAllowlistPolicy } from '../../policies/ip-allowlist/index.ts';
import { projectTagsPolicy } from '../../policies/project-tags/index.ts';
import { providerAccessPolicy } from '../../policies/provider-access/index.ts';
import { TEAMS_SECTION, type TeamPermissions, type TeamsSection, type TeamView } from '../../plugins/teams/types.ts';
import { describePolicyConformance } from '../conformance/policy.ts';

const TEAM_HEADER = 'x-conformance-team';
const ENVIRONMENT_HEADER = 'x-conformance-environment';
const KEY_ENVIRONMENT_HEADER = 'x-conformance-key-environment';
const TOOLS_HEADER = 'x-conformance-tool';

function prepare(context: RequestContext, stage: keyof Hooks): void {
  const team = context.headers.get(TEAM_HEADER);
  if (team !== null) context.teamId = `team_${team}`;
  const environment = context.headers.get(ENVIRONMENT_HEADER);
  if (environment !== null && context.principal.environment !== environment) context.principal = { ...context.principal, environment };
  const tool = context.headers.get(TOOLS_HEADER);
  if (tool !== null && stage === 'auth' && !(context.request.tools ?? []).some((entry) => (entry as { type: string }).type === tool)) {
    context.request.tools = [...(context.request.tools ?? []), { type: tool, server_url: 'https://evil.example/mcp' } as never];
  }
  const keyEnvironment = context.headers.get(KEY_ENVIRONMENT_HEADER);
  if (keyEnvironment !== null && stage === 'keyResolve' && context.keys !== undefined) {
    const relabel = (map: ReadonlyMap<string, readonly ProviderKeyRecord[]>) =>
      new Map([...map].map(([provider, keys]) => [provider, keys.map((key) => ({ ...key, settings: { ...key.settings, environment: keyEnvironment } }))]));
    context.keys = { account: relabel(context.keys.account), platform: relabel(context.keys.platform) };
  }
}

function wrap(hooks: Hooks): Hooks {
  const wrapped: Hooks = {};
  for (const stage of ['auth', 'keyResolve', 'route', 'call'] as const) {
    const hook = hooks[stage];
    wrapped[stage] = (context) => {
      prepare(context, stage);
      return hook?.call(hooks, context);
    };
  }
  if (hooks.account !== undefined) wrapped.account = hooks.account.bind(hooks);
  return wrapped;
}

/** The policy under another name, reading `teams` from a section holding the given synthetic teams. */
function underTest(plugin: PluginDefinition, teams: Record<string, TeamPermissions> = {}): PluginDefinition {
  const byId = new Map<string, TeamView>(
    Object.entries(teams).map(([name, permissions]) => [`team_${name}`, { id: `team_${name}`, accountId: 'default', name, permissions }]),
  );
  const section: TeamsSection = { byId, deletedById: new Map() };
  return {
    ...plugin,
    name: `${plugin.name}-under-test`,
    hooks: undefined,
    async setup(context) {
      const real = context.services;
      const services = new Proxy(real, {
        get(target, property, receiver) {
          if (property !== 'snapshot') return Reflect.get(target, property, receiver);
          return {
            get current() {
              return target.snapshot.current;
            },
            section: (name: string) => (name === TEAMS_SECTION ? section : target.snapshot.section(name)),
            refresh: () => target.snapshot.refresh(),
          };
        },
      });
      const contributions = await plugin.setup?.({ ...context, services });
      return { ...contributions, hooks: wrap({ ...plugin.hooks, ...contributions?.hooks }) };
    },
  };
}

describePolicyConformance(
  'provider-access (model list)',
  underTest(providerAccessPolicy, { seed: { providers: { openai: { enabled: true, models: ['gpt-4o-mini*'] } } } }),
  {
    allowed: { model: 'gpt-4o-mini', headers: { [TEAM_HEADER]: 'seed' } },
    refused: { model: 'gpt-4o', headers: { [TEAM_HEADER]: 'seed' }, code: 'model_not_allowed' },
  },
);

describePolicyConformance('provider-access (provider off)', underTest(providerAccessPolicy, { off: { providers: { openai: { enabled: false } } } }), {
  allowed: { model: 'gpt-4o-mini' },
  refused: { model: 'gpt-4o-mini', headers: { [TEAM_HEADER]: 'off' }, code: 'provider_not_allowed' },
});

const TAGGED = { usage_controls: { require_project_tag: true, allowed_projects: ['project-a', 'project-b'] } };

describePolicyConformance('project-tags (required)', underTest(projectTagsPolicy, { seed: TAGGED }), {
  allowed: { model: 'gpt-4o-mini', headers: { [TEAM_HEADER]: 'seed', 'x-project-tag': 'project-a' } },
  refused: { model: 'gpt-4o-mini', headers: { [TEAM_HEADER]: 'seed' }, code: 'project_tag_required' },
});

describePolicyConformance('project-tags (not listed)', underTest(projectTagsPolicy, { seed: TAGGED }), {
  allowed: { model: 'gpt-4o-mini', headers: { [TEAM_HEADER]: 'seed', 'x-project-tag': 'project-b' } },
  refused: { model: 'gpt-4o-mini', headers: { [TEAM_HEADER]: 'seed', 'x-project-tag': 'project-z' }, code: 'project_not_allowed' },
});

describePolicyConformance(
  'ip-allowlist',
  underTest(ipAllowlistPolicy, { local: { allowed_ips: ['127.0.0.0/8', '::1'] }, remote: { allowed_ips: ['203.0.113.0/24'] } }),
  {
    allowed: { model: 'gpt-4o-mini', headers: { [TEAM_HEADER]: 'local' } },
    refused: { model: 'gpt-4o-mini', headers: { [TEAM_HEADER]: 'remote' }, code: 'ip_not_allowed' },
  },
);

describePolicyConformance('environment', underTest(environmentPolicy), {
  allowed: { model: 'gpt-4o-mini', headers: { [ENVIRONMENT_HEADER]: 'staging' } },
  refused: { model: 'gpt-4o-mini', headers: { [ENVIRONMENT_HEADER]: 'staging', [KEY_ENVIRONMENT_HEADER]: 'production' }, code: 'provider_not_allowed' },
});

describePolicyConformance(
  'hosted-tools',
  underTest(hostedToolsPolicy, { seed: { hosted_tools: { web_search: true, mcp_servers: ['https://mcp.example.com/*'] } } }),
  {
    allowed: { model: 'gpt-4o-mini', headers: { [TEAM_HEADER]: 'seed' } },
    refused: { model: 'gpt-4o-mini', headers: { [TEAM_HEADER]: 'seed', [TOOLS_HEADER]: 'mcp' }, code: 'tool_not_allowed' },
  },
);
