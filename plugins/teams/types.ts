// The team policy as the teams plugin keeps it in the snapshot (section `teams`), and as every policy
// plugin in policies/ reads it. Field names are the seed's (`byok_permissions`); see
// ../shared/seed/byok-use-case.txt, "Team BYOK Configuration".

import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { SnapshotService } from '../../core/spec/services.ts';

export const TEAMS_SECTION = 'teams';

/** One provider's rules for a team. A provider the team does not list is allowed, without limits. */
export interface ProviderPermission {
  enabled: boolean;
  /** Exact model names and `*` globs; absent means every model of the provider. */
  models?: string[];
  /** USD per UTC day, for this team on this provider, at list price. */
  max_cost_per_day?: number;
  /** USD: a request whose worst-case cost is above it needs an admin's approval. */
  require_approval_above?: number;
}

export interface UsageControls {
  log_all_requests?: boolean;
  require_project_tag?: boolean;
  allowed_projects?: string[];
  block_sensitive_content?: boolean;
}

export interface HostedTools {
  web_search?: boolean;
  code_execution?: boolean;
  /** Remote MCP server URLs (or `*` globs of them) the team may name in a request's `tools`. */
  mcp_servers?: string[];
}

export interface TeamPermissions {
  providers?: Record<string, ProviderPermission>;
  usage_controls?: UsageControls;
  /** Addresses or CIDR ranges the team's requests may come from. */
  allowed_ips?: string[];
  rate_limits?: { requests_per_minute?: number; tokens_per_minute?: number };
  hosted_tools?: HostedTools;
}

export interface TeamView {
  id: string;
  accountId: string;
  name: string;
  permissions: TeamPermissions;
}

export interface TeamsSection {
  byId: ReadonlyMap<string, TeamView>;
}

/** The team a request acts for, when it is one of the caller's account's teams. */
export function teamOf(snapshot: SnapshotService, context: RequestContext): TeamView | undefined {
  const teamId = context.teamId;
  if (teamId === undefined) return undefined;
  const team = snapshot.section<TeamsSection>(TEAMS_SECTION)?.byId.get(teamId);
  return team !== undefined && team.accountId === context.principal.accountId ? team : undefined;
}

/** How a policy finds the request's team; tests substitute their own. */
export type TeamLookup = (snapshot: SnapshotService, context: RequestContext) => TeamView | undefined;

/** What a team policy's factory takes: another name (a second copy beside the built-in one, in tests) and a lookup. */
export interface TeamPolicyOptions {
  name?: string;
  lookup?: TeamLookup;
}
