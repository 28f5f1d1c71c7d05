// The team policy as the teams plugin keeps it in the snapshot (section `teams`), and as every policy
// plugin in policies/ reads it. Field names are the seed's (`byok_permissions`); see
// ../shared/seed/byok-use-case.txt, "Team BYOK Configuration".

import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { Principal } from '../../core/spec/principal.ts';
import type { Services, SnapshotService } from '../../core/spec/services.ts';
import { redactClientKey } from '../../core/wire/secret-fields.ts';

export const TEAMS_SECTION = 'teams';

/** One provider's rules for a team. A team that lists providers may use those only (policies/provider-access). */
export interface ProviderPermission {
  /** Stored as true when the entry left it out (records.ts); false turns the provider off for the team. */
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

/** A deleted team as reports still name it: its row stays, marked `deleted_at` (DELETE /v1/teams/{id}). */
export interface DeletedTeam {
  id: string;
  accountId: string;
  name: string;
  deletedAt: string;
}

export interface TeamsSection {
  /** Live teams only: every policy, route and header check treats a deleted team as gone. */
  byId: ReadonlyMap<string, TeamView>;
  /**
   * Deleted teams, for names alone: analytics and the billing export name the spend a team booked
   * before it was deleted (docs/teams.md, docs/analytics.md). Never a team to act for.
   */
  deletedById: ReadonlyMap<string, DeletedTeam>;
}

/** The team a request acts for, when it is one of the caller's account's teams. */
export function teamOf(snapshot: SnapshotService, context: Pick<RequestContext, 'teamId' | 'principal'>): TeamView | undefined {
  const teamId = context.teamId;
  if (teamId === undefined) return undefined;
  const team = snapshot.section<TeamsSection>(TEAMS_SECTION)?.byId.get(teamId);
  return team !== undefined && team.accountId === context.principal.accountId ? team : undefined;
}

/**
 * The team a request acts for beyond its key's own: an account admin key (or the operator, on
 * `default`) naming one of its account's teams with X-Team-ID. A member key's team is its own (the
 * core refuses a different X-Team-ID before any hook runs). Shared by the teams plugin's `auth` hook
 * and whatever else must know the team outside the lifecycle (GET /v1/models), so both refuse alike.
 */
export function actingTeamOf(services: Pick<Services, 'snapshot' | 'errors'>, principal: Principal, headers: Headers): string | undefined {
  if (principal.teamId !== undefined) return undefined;
  const header = headers.get('x-team-id');
  if (header === null || header === '') return undefined;
  // The header is the client's text, and a secret pasted into it must not come back in the answer.
  // The request's own X-Provider-Key is redacted before the cut, which could leave too little of it to find.
  const shown = services.errors.redact(redactClientKey(header, headers).slice(0, 100));
  if (principal.role !== 'admin' && principal.role !== 'operator') {
    throw services.errors.create('permission_denied', {
      detail: `Only an account admin key may act for a team with X-Team-ID; this key has the ${principal.role} role and no team.`,
    });
  }
  const team = services.snapshot.section<TeamsSection>(TEAMS_SECTION)?.byId.get(header);
  if (team === undefined || team.accountId !== principal.accountId) {
    throw services.errors.create('permission_denied', { detail: `X-Team-ID names ${shown}, which is not a team of this account.` });
  }
  return team.id;
}

/** How a policy finds the request's team; tests substitute their own. */
export type TeamLookup = (snapshot: SnapshotService, context: RequestContext) => TeamView | undefined;

/** What a team policy's factory takes: another name (a second copy beside the built-in one, in tests) and a lookup. */
export interface TeamPolicyOptions {
  name?: string;
  lookup?: TeamLookup;
}
