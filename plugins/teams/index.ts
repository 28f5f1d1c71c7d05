// Teams: the seed's "Team BYOK Configuration". Teams of an account, their members and the members'
// gateway keys (answered once, stored as hashes), the `teams` snapshot section every team policy
// reads (types.ts), `X-Team-ID` for account admin keys, and `GET /v1/usage/me` (usage-me.ts). Built only from the
// plugin API and the services it is handed.

import { Type } from '@sinclair/typebox';
import type { Principal, RequestContext } from '../../core/spec/plugin.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { PERIOD_PARAMETERS } from '../../core/http/kit/query.ts';
import { AllowedIpsSchema } from '../../core/spec/key-settings.ts';
import {
  CreateTeamSchema,
  HostedToolsSchema,
  MemberAnswerSchema,
  MemberSchema,
  PatchTeamSchema,
  ProviderPermissionSchema,
  ReissueChangeSchema,
  ReissueKeySchema,
  StoredTeamSettingsSchema,
  TeamAnswerSchema,
  UsageControlsSchema,
  teamName,
  type MemberBody,
  type ReissueChange,
  type TeamPatch,
  type TeamSettings,
} from './schema.ts';
import { actingTeamOf, TEAMS_SECTION } from './types.ts';
import { answerUsageMeFlushes, usageOf } from './usage-me.ts';
import { providerListWarnings, type KeyedProviders } from './provider-warnings.ts';
import { checkReissueWithinIssuer, memberWithinIssuer, reissuedSettings } from './member-bounds.ts';
import { closeWithTeam, type ClosedWithTeam } from './deletion.ts';
import { issueMember, markMemberRemoved, markTeamMembersRemoved, revokeTeamKeys, swapMemberKey, teamIsLive } from './member-keys.ts';
import { laterThan, PATCH_ATTEMPTS, storeTeamIfUnchanged } from './team-writes.ts';
import {
  isPlainObject,
  loadTeamsSection,
  memberAnswer,
  memberOfKey,
  mergePatch,
  MIGRATIONS,
  permissionsOf,
  settingsOf,
  teamAnswer,
  toMember,
  toTeam,
  type KeyIssuer,
  type MemberRow,
  type TeamRow,
} from './records.ts';

export { actingTeamOf, TEAMS_SECTION, teamOf, type DeletedTeam, type TeamPermissions, type TeamsSection, type TeamView } from './types.ts';
export { loadTeamsSection, mergePatch } from './records.ts';
export { onTeamDeleted, type ClosedWithTeam, type TeamDeletion } from './deletion.ts';

export const teamsPlugin = definePlugin({
  name: 'teams',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  description: 'Teams, their members and member keys, X-Team-ID for account admins, and GET /v1/usage/me',
  setup({ services }) {
    const teams = new TeamService(services);
    answerUsageMeFlushes(services);
    return {
      migrations: MIGRATIONS,
      snapshot: [{ name: TEAMS_SECTION, load: loadTeamsSection }],
      hooks: {
        auth(context: RequestContext) {
          const teamId = teams.actingTeam(context.principal, context.headers);
          if (teamId !== undefined) context.teamId = teamId;
        },
      },
      routes: [
        {
          method: 'POST',
          path: '/v1/teams',
          role: 'admin',
          teamKeys: true,
          summary: 'Create a team with its BYOK permissions and members (member keys answered once)',
          body: CreateTeamSchema,
          response: TeamAnswerSchema,
          handle: async ({ request, principal }) => services.http.json(await teams.create(principal as Principal, await services.http.readJson(request)), 201),
        },
        {
          method: 'GET',
          path: '/v1/teams',
          role: 'admin',
          teamKeys: true,
          summary: "The account's teams",
          response: Type.Object({ teams: Type.Array(TeamAnswerSchema) }),
          handle: async ({ principal }) => services.http.json({ object: 'list', teams: await teams.list(principal as Principal) }),
        },
        {
          method: 'GET',
          path: '/v1/teams/:id',
          role: 'admin',
          teamKeys: true,
          summary: 'One team, with its members (never their keys)',
          response: TeamAnswerSchema,
          handle: async ({ principal, params }) => {
            const team = await teams.find(principal as Principal, params.id ?? '');
            return services.http.json(teamAnswer(team, await teams.memberAnswers(team.id)));
          },
        },
        {
          method: 'PATCH',
          path: '/v1/teams/:id',
          role: 'admin',
          summary: 'Change a team: a JSON merge patch of its name and permissions (null removes a field)',
          body: PatchTeamSchema,
          response: TeamAnswerSchema,
          handle: async ({ request, principal, params }) => {
            const { before, after, warnings } = await teams.update(principal as Principal, params.id ?? '', await services.http.readJson(request));
            // The audit entry keeps what the team was: a budget raised from 100 to 10,000 shows both.
            services.http.recordChange(request, { before, after });
            return services.http.json(withWarnings(after, warnings));
          },
        },
        {
          method: 'DELETE',
          path: '/v1/teams/:id',
          role: 'admin',
          summary: 'Delete a team, revoke its member keys and cancel its pending approvals',
          handle: async ({ request, principal, params }) => {
            // The audit entry says what was removed: the team as GET showed it, members' keys masked,
            // and what closed with it (its pending approvals, as they were and as cancelled).
            const team = await teams.find(principal as Principal, params.id ?? '');
            const before = teamAnswer(team, await teams.memberAnswers(team.id));
            const closed = await teams.remove(principal as Principal, params.id ?? '');
            services.http.recordChange(request, { before: { ...before, ...closed?.before }, after: closed?.after ?? null });
            return new Response(null, { status: 204 });
          },
        },
        {
          method: 'POST',
          path: '/v1/teams/:id/members',
          role: 'admin',
          teamKeys: true,
          summary: 'Add a member to a team (its key answered once)',
          body: MemberSchema,
          response: MemberAnswerSchema,
          handle: async ({ request, principal, params }) =>
            services.http.json(await teams.addMember(principal as Principal, params.id ?? '', await services.http.readJson(request)), 201),
        },
        {
          method: 'DELETE',
          path: '/v1/teams/:id/members/:member_id',
          role: 'admin',
          teamKeys: true,
          summary: 'Remove a member and revoke its key',
          handle: async ({ request, principal, params }) => {
            const team = await teams.find(principal as Principal, params.id ?? '');
            const before = (await teams.memberAnswers(team.id)).find((member) => member.id === params.member_id);
            await teams.removeMember(principal as Principal, params.id ?? '', params.member_id ?? '');
            services.http.recordChange(request, { before: before ?? { id: params.member_id ?? '' }, after: null });
            return new Response(null, { status: 204 });
          },
        },
        {
          method: 'POST',
          path: '/v1/teams/:id/members/:member_id/keys',
          role: 'admin',
          teamKeys: true,
          summary: "Re-issue a member's key: the new key answered once, the old one revoked at once",
          body: ReissueKeySchema,
          response: MemberAnswerSchema,
          handle: async ({ request, principal, params }) => {
            const change = await services.http.readOptionalJson(request);
            const { before, after } = await teams.reissueKey(principal as Principal, params.id ?? '', params.member_id ?? '', change);
            services.http.recordChange(request, { before, after });
            return services.http.json(after, 201);
          },
        },
        {
          method: 'GET',
          path: '/v1/usage/me',
          role: 'viewer',
          query: PERIOD_PARAMETERS,
          summary: "The caller's own usage over a period, and its team's remaining daily budgets",
          handle: async ({ request, principal }) => services.http.json(await usageOf(services, principal as Principal, request)),
        },
      ],
    };
  },
});

/** A management answer with its `warnings` (as POST /v1/alerts gives them): the field only when there is one. */
function withWarnings(answer: Record<string, unknown>, warnings: readonly string[]): Record<string, unknown> {
  return warnings.length === 0 ? answer : { ...answer, warnings };
}

class TeamService {
  constructor(private readonly services: Services) {}

  /** The providers an account's teams could reach through keys: its own, and the platform's. */
  private keyedProviders(accountId: string): KeyedProviders {
    const providersOf = (owner: string | null): Set<string> => new Set(this.services.providerKeys.list(owner).map((key) => key.provider));
    return { account: providersOf(accountId), platform: providersOf(null) };
  }

  private now(): string {
    return new Date(this.services.clock.now()).toISOString();
  }

  private notFound(id: string): Error {
    return this.services.errors.create('not_found', { detail: `No team ${id.slice(0, 100)} in this account.` });
  }

  /** The team an account admin key acts for with X-Team-ID (types.ts, actingTeamOf). */
  actingTeam(principal: Principal, headers: Headers): string | undefined {
    return actingTeamOf(this.services, principal, headers);
  }

  private async teamRow(accountId: string, id: string): Promise<TeamRow | undefined> {
    const rows = await this.services.store.query(
      'SELECT id, account_id, name, permissions, created_at, updated_at FROM teams WHERE id = ? AND account_id = ? AND deleted_at IS NULL',
      [id, accountId],
    );
    return rows[0] === undefined ? undefined : toTeam(rows[0]);
  }

  /** A team the caller may manage: its account's, and a member admin only its own team. */
  async find(principal: Principal, id: string): Promise<TeamRow> {
    if (principal.teamId !== undefined && principal.teamId !== id) throw this.notFound(id);
    const team = await this.teamRow(principal.accountId, id);
    if (team === undefined) throw this.notFound(id);
    return team;
  }

  private async members(teamId: string): Promise<MemberRow[]> {
    const rows = await this.services.store.query(
      'SELECT id, team_id, account_id, email, role, byok_access, gateway_key_id, settings, created_at FROM team_members WHERE team_id = ? AND removed_at IS NULL ORDER BY created_at, rowid',
      [teamId],
    );
    return rows.map(toMember);
  }

  /** Every member, those whose key was revoked outside the team routes too: they stay members until removed. */
  async memberAnswers(teamId: string): Promise<Array<Record<string, unknown>>> {
    const members = await this.members(teamId);
    if (members.length === 0) return [];
    const masked = new Map((await this.services.store.listActiveGatewayKeys()).map((key) => [key.id, key.maskedKey]));
    return members.map((member) => memberAnswer(member, masked.get(member.gatewayKeyId)));
  }

  private checkNewMembers(members: readonly MemberBody[], existing: readonly string[], param: (index: number, field: string) => string): void {
    const seen = new Set(existing.map((email) => email.toLowerCase()));
    members.forEach((member, index) => {
      // A viewer reads usage only: its key is refused at inference whatever it holds, so a `true` answered
      // back would say an access the member does not have (QA20).
      if (member.role === 'viewer' && member.byok_access === true) {
        const where = param(index, 'byok_access');
        throw this.services.errors.create(
          'invalid_field',
          { param: where, detail: 'a viewer reads usage only and never calls models; give the member the developer role to let it call them' },
          { param: where },
        );
      }
      const email = member.email.toLowerCase();
      if (seen.has(email)) {
        const where = param(index, 'email');
        throw existing.includes(member.email) || existing.some((known) => known.toLowerCase() === email)
          ? this.services.errors.create('conflict', { detail: `${member.email} is already a member of this team.` }, { param: where })
          : this.services.errors.create('invalid_field', { param: where, detail: `${member.email} is listed twice` }, { param: where });
      }
      seen.add(email);
    });
  }

  /** Who issues a key now: recorded with the member, so four eyes knows a lead's copy of a key (records.ts). */
  private async issuerOf(principal: Principal): Promise<KeyIssuer> {
    if (principal.teamId === undefined) return { keyId: principal.keyId, memberId: null };
    return { keyId: principal.keyId, memberId: (await memberOfKey(this.services.store, principal.keyId))?.id ?? null };
  }

  async create(principal: Principal, input: unknown): Promise<Record<string, unknown>> {
    if (principal.teamId !== undefined) {
      throw this.services.errors.create('permission_denied', { detail: "A team member's key cannot create teams; use an account admin key." });
    }
    const body = this.services.http.validateBody(CreateTeamSchema, input);
    const members = body.members ?? [];
    this.checkNewMembers(members, [], (index, field) => `members[${index}].${field}`);
    const now = this.now();
    const team: TeamRow = {
      id: this.services.credentials.randomId('team'),
      accountId: principal.accountId,
      name: teamName(body.name),
      permissions: permissionsOf(body),
      createdAt: now,
      updatedAt: now,
    };
    await this.services.store.execute(
      'INSERT INTO teams (id, account_id, name, permissions, created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, NULL)',
      [team.id, team.accountId, team.name, JSON.stringify(team.permissions), team.createdAt, team.updatedAt],
    );
    const answers: Array<Record<string, unknown>> = [];
    try {
      const issuer = await this.issuerOf(principal);
      for (const member of members) answers.push(await issueMember(this.services, team, member, issuer));
    } finally {
      await this.services.snapshot.refresh();
    }
    return withWarnings(teamAnswer(team, answers), providerListWarnings(team.permissions, this.keyedProviders(team.accountId)));
  }

  async list(principal: Principal): Promise<Array<Record<string, unknown>>> {
    const rows = await this.services.store.query(
      'SELECT id, account_id, name, permissions, created_at, updated_at FROM teams WHERE account_id = ? AND deleted_at IS NULL ORDER BY created_at, rowid',
      [principal.accountId],
    );
    const teams = rows.map(toTeam).filter((team) => principal.teamId === undefined || team.id === principal.teamId);
    const answers: Array<Record<string, unknown>> = [];
    for (const team of teams) answers.push(teamAnswer(team, await this.memberAnswers(team.id)));
    return answers;
  }

  /**
   * The team before and after the patch, each as GET shows it (member keys masked), and the warnings of
   * a patch that changed the provider list (provider-warnings.ts).
   */
  async update(
    principal: Principal,
    id: string,
    input: unknown,
  ): Promise<{ before: Record<string, unknown>; after: Record<string, unknown>; warnings: string[] }> {
    if (isPlainObject(input) && 'members' in input) {
      await this.find(principal, id);
      throw this.services.errors.create(
        'invalid_field',
        { param: 'members', detail: 'members are changed with POST /v1/teams/{id}/members and DELETE /v1/teams/{id}/members/{member_id}' },
        { param: 'members' },
      );
    }
    const patch = this.services.http.validateBody(PatchTeamSchema, input);
    // Written only over the team it was merged into; a PATCH that landed meanwhile is merged into
    // (QA qa-teams M1: concurrent PATCHes each wrote their whole merge and the last undid the others).
    for (let attempt = 1; ; attempt += 1) {
      const team = await this.find(principal, id);
      const updated = this.patched(team, patch);
      if (await storeTeamIfUnchanged(this.services.store, team, updated)) {
        await this.services.snapshot.refresh();
        const members = await this.memberAnswers(team.id);
        // Only a patch of the provider list can shut providers out; any other leaves the list as it was.
        const listChanged = isPlainObject(patch.byok_permissions) && 'providers' in patch.byok_permissions;
        const warnings = listChanged ? providerListWarnings(updated.permissions, this.keyedProviders(team.accountId), team.permissions) : [];
        return { before: teamAnswer(team, members), after: teamAnswer(updated, members), warnings };
      }
      if (attempt === PATCH_ATTEMPTS) {
        throw this.services.errors.create('conflict', {
          detail: `Team ${team.id} kept changing while this PATCH was merged into it; nothing was changed. Send it again.`,
        });
      }
    }
  }

  /** The team with the patch merged, validated as a whole: a bad patch throws and changes nothing. */
  private patched(team: TeamRow, patch: TeamPatch): TeamRow {
    const merged = this.services.http.validateBody(StoredTeamSettingsSchema, mergePatch(settingsOf(team), patch)) as TeamSettings;
    // The lists the patch sets are held to today's grammar; those it leaves are kept as stored.
    if (Array.isArray(patch.allowed_ips)) this.services.http.validateBody(Type.Object({ allowed_ips: AllowedIpsSchema }), { allowed_ips: merged.allowed_ips });
    const controls = isPlainObject(patch.byok_permissions) ? patch.byok_permissions.usage_controls : undefined;
    if (isPlainObject(controls) && Array.isArray(controls.allowed_projects))
      this.services.http.validateBody(Type.Object({ byok_permissions: Type.Object({ usage_controls: UsageControlsSchema }) }), {
        byok_permissions: { usage_controls: merged.byok_permissions?.usage_controls },
      });
    const providers = isPlainObject(patch.byok_permissions) ? patch.byok_permissions.providers : undefined;
    if (isPlainObject(providers)) {
      // Only the model lists the patch sets: another provider's list stored by an older release is kept.
      const listed = Object.entries(providers).filter(([, entry]) => isPlainObject(entry) && Array.isArray(entry.models));
      if (listed.length > 0)
        this.services.http.validateBody(Type.Object({ byok_permissions: Type.Object({ providers: Type.Record(Type.String(), ProviderPermissionSchema) }) }), {
          byok_permissions: { providers: Object.fromEntries(listed.map(([name]) => [name, merged.byok_permissions?.providers?.[name]])) },
        });
    }
    if (isPlainObject(patch.hosted_tools) && Array.isArray(patch.hosted_tools.mcp_servers))
      this.services.http.validateBody(Type.Object({ hosted_tools: HostedToolsSchema }), { hosted_tools: merged.hosted_tools });
    // A name the patch sets is trimmed; one it leaves is kept as stored.
    const name = patch.name === undefined ? merged.name : teamName(merged.name);
    return { ...team, name, permissions: permissionsOf(merged), updatedAt: laterThan(team.updatedAt, this.services.clock.now()) };
  }

  /** Deletes the team, revokes its member keys, and closes what other plugins keep for it (deletion.ts): what they closed. */
  async remove(principal: Principal, id: string): Promise<ClosedWithTeam | undefined> {
    const team = await this.find(principal, id);
    const now = this.now();
    try {
      // Member keys first, the team last: a snapshot load (another instance's) may land between two of
      // these writes, and a member key still active once its team was marked deleted was served with
      // none of the team's rules (test/teams/snapshot-consistency.test.ts). A deletion that fails
      // half-way leaves the team, so it can be deleted again. The members are marked removed first, so
      // no re-issue can move one to a new key any more (member-keys.ts), then every key of the team is
      // revoked, once more after the mark: a member added while the team was being deleted.
      const { store } = this.services;
      for (const keyId of await markTeamMembersRemoved(store, team.id, now)) await store.revokeGatewayKey(keyId, team.accountId);
      await revokeTeamKeys(store, team.id, team.accountId);
      await store.execute('UPDATE teams SET deleted_at = ?, updated_at = ? WHERE id = ? AND account_id = ?', [now, now, team.id, team.accountId]);
      await revokeTeamKeys(store, team.id, team.accountId);
      return await closeWithTeam(this.services, { teamId: team.id, accountId: team.accountId, deletedBy: principal.keyId, deletedAt: now });
    } finally {
      await this.services.snapshot.refresh();
    }
  }

  async addMember(principal: Principal, id: string, input: unknown): Promise<Record<string, unknown>> {
    const team = await this.find(principal, id);
    const member = memberWithinIssuer(this.services.errors, principal, this.services.http.validateBody(MemberSchema, input));
    this.checkNewMembers(
      [member],
      (await this.members(team.id)).map((existing) => existing.email),
      (_index, field) => field,
    );
    try {
      const added = await issueMember(this.services, team, member, await this.issuerOf(principal));
      // A deletion that read the team's keys before this one was stored would leave it live.
      if (await teamIsLive(this.services.store, team.id)) return added;
      const keyId = await markMemberRemoved(this.services.store, String(added.id), team.id, this.now());
      if (keyId !== undefined) await this.services.store.revokeGatewayKey(keyId, team.accountId);
      throw this.notFound(team.id);
    } finally {
      await this.services.snapshot.refresh();
    }
  }

  private async member(team: TeamRow, memberId: string): Promise<MemberRow> {
    const member = (await this.members(team.id)).find((candidate) => candidate.id === memberId);
    if (member === undefined) throw this.services.errors.create('not_found', { detail: `No member ${memberId.slice(0, 100)} in team ${team.id}.` });
    return member;
  }

  async removeMember(principal: Principal, id: string, memberId: string): Promise<void> {
    const team = await this.find(principal, id);
    const member = await this.member(team, memberId);
    if (member.gatewayKeyId === principal.keyId) throw this.services.errors.create('conflict', { detail: 'A key cannot remove its own member.' });
    // The key the member holds when it is marked removed, not the one read above: a re-issue may have landed between.
    const keyId = await markMemberRemoved(this.services.store, member.id, team.id, this.now());
    if (keyId !== undefined) await this.services.store.revokeGatewayKey(keyId, team.accountId);
    await this.services.snapshot.refresh();
  }

  /**
   * A re-issue whose member moved on while it ran (another re-issue won, the member was removed or its
   * team deleted): its key, never answered, is revoked, and the caller told what happened.
   */
  private async refuseLostReissue(principal: Principal, team: TeamRow, memberId: string, keyId: string): Promise<never> {
    await this.services.store.revokeGatewayKey(keyId, team.accountId);
    await this.member(await this.find(principal, team.id), memberId);
    throw this.services.errors.create('conflict', {
      detail:
        "This member's key was re-issued by another call while this one ran, so this one issued no key. The key that call answered is the member's; send this again to replace it.",
    });
  }

  /** The re-issue body, validated: none (undefined) changes nothing; `environment: null` removes it. */
  private reissueChange(input: unknown): ReissueChange {
    if (input === undefined) return {};
    if (!isPlainObject(input) || input.environment !== null) return this.services.http.validateBody(ReissueChangeSchema, input);
    const { environment: _removed, ...rest } = input;
    return { ...this.services.http.validateBody(ReissueChangeSchema, rest), environment: null };
  }

  /**
   * A new key with the member's role and access, and its settings with what `input` (the optional
   * body) changes, stored with the member; the old key is revoked (it may be already). `before` is the
   * member as GET showed it (its old key masked), `after` the answer (the new key once).
   */
  async reissueKey(
    principal: Principal,
    id: string,
    memberId: string,
    input?: unknown,
  ): Promise<{ before: Record<string, unknown>; after: Record<string, unknown> }> {
    const change = this.reissueChange(input);
    const team = await this.find(principal, id);
    const stored = await this.member(team, memberId);
    const member: MemberRow = { ...stored, settings: reissuedSettings(stored.settings, change) };
    checkReissueWithinIssuer(this.services.errors, principal, member, change);
    const before = (await this.memberAnswers(team.id)).find((shown) => shown.id === member.id) ?? memberAnswer(stored, undefined);
    const issuer = await this.issuerOf(principal);
    const { credentials, store } = this.services;
    const apiKey = credentials.generateGatewayKey('mk');
    const key = await store.insertGatewayKey({
      id: credentials.randomId('key'),
      accountId: team.accountId,
      role: member.role as Principal['role'],
      name: `${member.email} (${team.name})`.slice(0, 200),
      keyHash: credentials.hashGatewayKey(apiKey),
      maskedKey: credentials.maskKey(apiKey),
      teamId: team.id,
      byokAccess: member.byokAccess,
      settings: member.settings,
    });
    try {
      // The new key is its issuer's as much as the member's: a lead re-issuing it holds a copy.
      const swap = { memberId: member.id, teamId: team.id, expectedKeyId: stored.gatewayKeyId, newKeyId: key.id, settings: member.settings, issuer };
      if (!(await swapMemberKey(store, swap))) await this.refuseLostReissue(principal, team, memberId, key.id);
      await store.revokeGatewayKey(member.gatewayKeyId, team.accountId);
    } finally {
      await this.services.snapshot.refresh();
    }
    return { before, after: memberAnswer({ ...member, gatewayKeyId: key.id }, key.maskedKey, apiKey) };
  }
}
