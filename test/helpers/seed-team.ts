// The seed's team_config ("Team BYOK Configuration" in ../shared/seed/byok-use-case.txt), as printed
// (Python's True/False as JSON): the one copy every test and bench of teams and policies starts from.

export const SEED_TEAM = {
  name: 'Engineering Team',
  byok_permissions: {
    providers: {
      openai: { enabled: true, models: ['gpt-4-turbo-preview', 'gpt-3.5-turbo'], max_cost_per_day: 100.0, require_approval_above: 10.0 },
      anthropic: { enabled: true, models: ['claude-3-sonnet-20240229'], max_cost_per_day: 50.0 },
      google: { enabled: false },
    },
    usage_controls: { log_all_requests: true, require_project_tag: true, allowed_projects: ['project-a', 'project-b'], block_sensitive_content: true },
  },
  members: [
    { email: 'developer@company.com', role: 'developer', byok_access: true },
    { email: 'intern@company.com', role: 'viewer', byok_access: false },
  ],
};

export interface SeedTeamVariant {
  /** OpenAI's daily budget; a load run raises it so that no request is refused, each still reserved and settled. */
  openaiBudgetUsd?: number;
  blockSensitiveContent?: boolean;
}

/** The seed's team with only its developer member, for benches, with the variations they need. */
export function seedTeamForBench(variant: SeedTeamVariant = {}) {
  const { byok_permissions: permissions } = SEED_TEAM;
  return {
    name: SEED_TEAM.name,
    byok_permissions: {
      providers: {
        ...permissions.providers,
        openai: { ...permissions.providers.openai, max_cost_per_day: variant.openaiBudgetUsd ?? permissions.providers.openai.max_cost_per_day },
      },
      usage_controls: {
        ...permissions.usage_controls,
        block_sensitive_content: variant.blockSensitiveContent ?? permissions.usage_controls.block_sensitive_content,
      },
    },
    members: SEED_TEAM.members.filter((member) => member.role === 'developer'),
  };
}
