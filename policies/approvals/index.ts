// approvals: a team's `require_approval_above` per provider. A request whose worst-case cost (the
// same figure cost-cap reserves) is above it is refused 403 `approval_required` with an
// `approval_id`, and the approval is stored pending (the same body re-sent by the same key while it
// waits answers that approval again); an admin approves or denies it (`/v1/approvals`); the member
// re-sends the same body with `X-Approval-Id` and it is served once.
// A re-send with `Prefer: wait=<seconds>` on a still pending approval waits for the decision, on
// whichever instance it is taken (a message on the cluster bus wakes it; the store decides).
// See README.md and docs/policies.md.

import { refuseUnknownParameters } from '../../core/http/kit/query.ts';
import type { RequestContext, RequestOutcome } from '../../core/spec/lifecycle.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';
import { raiseAlert } from '../../plugins/alerts/raise.ts';
import { teamOf, type TeamView } from '../../plugins/teams/types.ts';
import { keyIssuerMember, memberOfKey } from '../../plugins/teams/records.ts';
import { onTeamDeleted, type ClosedWithTeam, type TeamDeletion } from '../../plugins/teams/deletion.ts';
import { formatNanos, formatUsd, nanosToUsd, toNanosFloor } from '../../core/catalog/nano-usd.ts';
import { wholeBudgetRefusal } from '../cost-cap/refusal.ts';
import { APPROVAL_COLUMNS, APPROVAL_MIGRATIONS, APPROVAL_STATUSES, bodyHash, TEAM_DELETED, viewOf, type ApprovalView } from './records.ts';
import { refineWorstCasePlan, worstCasePlan } from '../cost-cap/worst-case.ts';
import { approvalRequired, type Judgement } from './refusal.ts';

export const APPROVALS_PLUGIN = 'approvals';
export const APPROVAL_TTL_MS = 24 * 60 * 60 * 1000;
/** The longest a re-send waits for a decision (`Prefer: wait=`), in seconds. */
export const MAX_APPROVAL_WAIT_SECONDS = 60;
/** A decided approval's id is published on this topic, so a re-send waiting on another instance wakes. */
export const APPROVAL_DECIDED_TOPIC = 'approvals:decided';
/** A decided or cancelled approval as it was before: pending, undecided. */
const UNDECIDED = { status: 'pending', reason: null, decided_by: null, decided_at: null } as const;
/** While waiting, the store is read again this often, in case a message was missed. */
const WAIT_RECHECK_MS = 2_000;

/** `Prefer: wait=<seconds>` (RFC 7240), capped; 0 when absent. */
export function preferredWaitMs(headers: Headers): number {
  const match = /(?:^|[,;\s])wait\s*=\s*"?(\d+)/i.exec(headers.get('prefer') ?? '');
  return match === null ? 0 : Math.min(Number(match[1]), MAX_APPROVAL_WAIT_SECONDS) * 1000;
}

export function createApprovals(services: Services) {
  const iso = (epoch: number): string => new Date(epoch).toISOString();
  const now = (): string => iso(services.clock.now());

  /** Per permissions object (a new one comes with every snapshot): built once, read on every request. */
  const thresholdsByPermissions = new WeakMap<object, Map<string, number>>();
  function thresholdsOf(team: TeamView): Map<string, number> {
    let thresholds = thresholdsByPermissions.get(team.permissions);
    if (thresholds !== undefined) return thresholds;
    thresholds = new Map<string, number>();
    for (const [provider, permission] of Object.entries(team.permissions.providers ?? {})) {
      const above = permission?.require_approval_above;
      if (typeof above === 'number' && Number.isFinite(above) && above >= 0) thresholds.set(provider, toNanosFloor(above));
    }
    thresholdsByPermissions.set(team.permissions, thresholds);
    return thresholds;
  }

  /** The largest worst case above its provider's threshold among the candidates, if any. */
  function judge(context: RequestContext, team: TeamView): Judgement | undefined {
    const thresholds = thresholdsOf(team);
    if (thresholds.size === 0) return undefined;
    let worst: Judgement | undefined;
    for (const entry of worstCasePlan(services.pricing, context)) {
      const provider = entry.provider;
      const thresholdNanos = thresholds.get(provider);
      if (thresholdNanos === undefined) continue;
      for (const { model, nanos } of entry.models) {
        if (nanos === undefined) {
          throw services.errors.create('model_unpriced', {
            detail: `Team '${team.name}' needs an approval above ${formatNanos(thresholdNanos)} on ${provider}, and ${provider}/${model} has no price (or no output limit), so its worst case cannot be judged. An operator must set a price first.`,
          });
        }
        if (nanos > thresholdNanos && (worst === undefined || nanos > worst.worstNanos)) worst = { provider, model, worstNanos: nanos, thresholdNanos };
      }
    }
    return worst;
  }

  async function targetsOf(teamId: string): Promise<string[]> {
    // The team's admins, when the teams plugin knows their addresses. Anything else (no such table,
    // no admin member) means no target: the alert is skipped, the approval still waits in the list.
    try {
      const rows = await services.store.query("SELECT email FROM team_members WHERE team_id = ? AND role = 'admin' AND removed_at IS NULL", [teamId]);
      return rows.map((row) => String(row.email)).filter((email) => email.includes('@'));
    } catch {
      return [];
    }
  }

  async function notify(approval: ApprovalView, team: TeamView): Promise<void> {
    // To the team's admins, and to every `approval_pending` alert of the account (plugins/alerts/raise.ts):
    // recorded in GET /v1/alerts/events, retried, once per approval.
    await raiseAlert(services, {
      accountId: approval.account_id,
      type: 'approval_pending',
      subject: approval.id,
      message: `Team '${team.name}' asks for approval of a request that may cost up to ${formatUsd(approval.worst_case_usd)} on ${approval.provider} (${approval.model}); approval ${approval.id} expires at ${approval.expires_at}.`,
      details: { approval_id: approval.id, team_id: team.id, provider: approval.provider, model: approval.model, worst_case_usd: approval.worst_case_usd },
      targets: await targetsOf(team.id),
      match: { team: team.id, provider: approval.provider },
    });
  }

  /**
   * The key's pending approval for this very body, if there is one: re-sending the request without
   * X-Approval-Id while it waits answers that approval again, rather than asking (and paging) anew.
   * With `judgement`: only one for its provider and model, the one the store keeps unique (migration
   * `0003_pending_once`).
   */
  async function pendingFor(context: RequestContext, team: TeamView, hash: string, judgement?: Judgement): Promise<ApprovalView | undefined> {
    const stamp = now();
    const same =
      judgement === undefined ? { sql: '', parameters: [] } : { sql: ' AND provider = ? AND model = ?', parameters: [judgement.provider, judgement.model] };
    const rows = await services.store.query(
      `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE account_id = ? AND team_id = ? AND gateway_key_id = ? AND body_hash = ? AND status = 'pending' AND expires_at > ?${same.sql} ORDER BY created_at, id LIMIT 1`,
      [context.principal.accountId, team.id, context.principal.keyId, hash, stamp, ...same.parameters],
    );
    return rows[0] === undefined ? undefined : viewOf(rows[0], stamp);
  }

  /**
   * Stores the approval pending unless the store holds one for the same key, body, provider and model
   * already (its unique index, `0003_pending_once`): whether this one was stored. Identical requests
   * arriving at once (in this process, another worker or another instance) all pass pendingFor before
   * any of them stored; the index lets one through, and the others answer the one it stored.
   */
  async function insertPending(approval: ApprovalView): Promise<boolean> {
    const stored = await services.store.query(
      'INSERT INTO approvals (id, account_id, team_id, gateway_key_id, body_hash, provider, model, worst_case_usd, status, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id',
      [
        approval.id,
        approval.account_id,
        approval.team_id,
        approval.gateway_key_id,
        approval.body_hash,
        approval.provider,
        approval.model,
        approval.worst_case_usd,
        approval.status,
        approval.created_at,
        approval.expires_at,
      ],
    );
    return stored.length === 1;
  }

  async function createPending(context: RequestContext, team: TeamView, judgement: Judgement, hash: string, prefix: string): Promise<never> {
    const alreadyWaiting = (waiting: ApprovalView): never =>
      approvalRequired(
        services,
        context,
        team,
        judgement,
        waiting,
        `${prefix}The same request already waits for approval ${waiting.id}; no new approval was asked for. `,
      );
    const waiting = await pendingFor(context, team, hash);
    if (waiting !== undefined) return alreadyWaiting(waiting);
    const created = services.clock.now();
    const approval: ApprovalView = {
      id: services.credentials.randomId('apr'),
      account_id: context.principal.accountId,
      team_id: team.id,
      gateway_key_id: context.principal.keyId,
      body_hash: hash,
      provider: judgement.provider,
      model: judgement.model,
      worst_case_usd: nanosToUsd(judgement.worstNanos),
      status: 'pending',
      reason: null,
      created_at: iso(created),
      expires_at: iso(created + APPROVAL_TTL_MS),
      decided_by: null,
      decided_at: null,
      used_at: null,
    };
    for (let attempt = 0; attempt < 3; attempt += 1) {
      if (await insertPending(approval)) {
        // Only the request that stored the approval pages the admins: once per approval.
        notify(approval, team).catch((error: unknown) =>
          services.logger.warn({ approvalId: approval.id, error: error instanceof Error ? error.message : String(error) }, 'approval alert failed'),
        );
        return approvalRequired(services, context, team, judgement, approval, prefix);
      }
      // Another request stored the same one since pendingFor looked: that one is the answer.
      const twin = await pendingFor(context, team, hash, judgement);
      if (twin !== undefined) return alreadyWaiting(twin);
      // What the index holds is past its expiry (read on the clock; no sweep wrote it yet): it is
      // written expired, as the list's sweep would, and this request asks anew.
      await services.store.execute(
        "UPDATE approvals SET status = 'expired' WHERE account_id = ? AND team_id = ? AND gateway_key_id = ? AND body_hash = ? AND provider = ? AND model = ? AND status = 'pending' AND expires_at <= ?",
        [approval.account_id, approval.team_id, approval.gateway_key_id, hash, approval.provider, approval.model, now()],
      );
    }
    throw services.errors.create('conflict', { detail: 'The same request was asked for approval concurrently and none could be stored; send it again.' });
  }

  function refused(id: string, detail: string, status: string, headers?: Record<string, string>): never {
    throw services.errors.create('approval_required', { detail }, { param: 'x-approval-id', extra: { approval_id: id, approval_status: status }, headers });
  }

  /** Re-sends waiting for a decision, by approval id; woken by a decision here or heard from the cluster. */
  const waiters = new Map<string, Set<() => void>>();
  let listening = false;
  function wake(id: string): void {
    for (const waiter of waiters.get(id) ?? []) waiter();
  }
  function announce(id: string): void {
    wake(id);
    Promise.resolve()
      .then(() => services.cluster.publish(APPROVAL_DECIDED_TOPIC, id))
      .catch((error: unknown) =>
        services.logger.warn(
          { approvalId: id, error: error instanceof Error ? error.message : String(error) },
          'could not tell the cluster about an approval decision',
        ),
      );
  }

  /**
   * Until the approval is no longer pending in the store, or `waitMs` passed. Ended when the shutdown
   * begins (`services.shutdown.draining`): a decision is a person's, nothing here works towards it, and
   * waiting through the drain would only hold the shutdown. It rejects with the core's 503 `not_ready`
   * (Retry-After: 1), the approval stays pending, and the client's re-send waits where it lands.
   */
  async function awaitDecision(id: string, waitMs: number): Promise<void> {
    const stopping = services.shutdown.draining;
    if (!listening) {
      // Subscribed on first use: the cluster is not available while plugins are set up.
      listening = true;
      services.cluster.subscribe(APPROVAL_DECIDED_TOPIC, wake);
    }
    const deadline = Date.now() + waitMs;
    let set = waiters.get(id);
    if (set === undefined) waiters.set(id, (set = new Set()));
    const waiting = set;
    try {
      for (let left = waitMs; left > 0; left = deadline - Date.now()) {
        // Also between the store's answers: an abort then would not wake the next wait.
        stopping.throwIfAborted();
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            waiting.delete(done);
            stopping.removeEventListener('abort', done);
            resolve();
          };
          const timer = setTimeout(done, Math.min(left, WAIT_RECHECK_MS));
          waiting.add(done);
          stopping.addEventListener('abort', done, { once: true });
        });
        stopping.throwIfAborted();
        const rows = await services.store.query('SELECT status FROM approvals WHERE id = ?', [id]);
        if (rows[0]?.status !== 'pending') return;
      }
    } finally {
      if (waiting.size === 0 && waiters.get(id) === waiting) waiters.delete(id);
    }
  }

  async function redeem(
    context: RequestContext,
    team: TeamView,
    judgement: Judgement,
    id: string,
    waitMs = preferredWaitMs(context.headers),
    applied?: string,
  ): Promise<void> {
    const headers = applied === undefined ? undefined : { 'preference-applied': applied };
    const hash = bodyHash(context.request);
    const rows = await services.store.query(`SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE id = ? AND account_id = ? AND team_id = ?`, [
      id,
      context.principal.accountId,
      team.id,
    ]);
    const row = rows[0];
    if (row === undefined)
      refused(id, `Approval ${id} does not exist for team '${team.name}'. Send the request without X-Approval-Id to ask for one.`, 'unknown', headers);
    const stamp = now();
    const approval = viewOf(row, stamp);
    // Bound to the key that asked: another member of the team cannot spend it first.
    if (approval.gateway_key_id !== context.principal.keyId)
      refused(
        id,
        `Approval ${id} was asked for by another key: only the key that asked may use it. Send the request without X-Approval-Id to ask for one.`,
        'other_key',
      );
    if (approval.body_hash !== hash) {
      return createPending(context, team, judgement, hash, `Approval ${id} was given for a different request body, so it cannot be used for this one. `);
    }
    if (approval.status === 'pending' && waitMs > 0) {
      // RFC 7240: the answer says the wait was honoured, served or refused.
      const applied = `wait=${Math.round(waitMs / 1000)}`;
      context.responseHeaders['preference-applied'] = applied;
      await awaitDecision(id, waitMs);
      return redeem(context, team, judgement, id, 0, applied);
    }
    if (approval.status === 'pending') refused(id, `Approval ${id} is still pending: an admin must approve it first.`, 'pending', headers);
    if (approval.status === 'denied') refused(id, `Approval ${id} was denied by an admin.`, 'denied', headers);
    if (approval.status === 'used') refused(id, `Approval ${id} was already used: an approval serves one request.`, 'used', headers);
    if (approval.status === 'expired')
      refused(id, `Approval ${id} expired at ${approval.expires_at}. Send the request without X-Approval-Id to ask for a new one.`, 'expired', headers);
    if (approval.status === 'cancelled') refused(id, `Approval ${id} was cancelled: its team was deleted.`, 'cancelled', headers);
    // Atomic: of two concurrent re-sends, exactly one moves it from approved to used.
    const used = await services.store.query(
      "UPDATE approvals SET status = 'used', used_at = ? WHERE id = ? AND status = 'approved' AND body_hash = ? AND expires_at > ? RETURNING id",
      [stamp, id, hash, stamp],
    );
    if (used.length !== 1) refused(id, `Approval ${id} was already used: an approval serves one request.`, 'used', headers);
    context.state.set(APPROVALS_PLUGIN, { redeemed: id });
  }

  function call(context: RequestContext): void | Promise<void> {
    // Counting tokens is free: judged as a completion of the key's whole output allowance, every count
    // of a Claude Code member was held for approval and paged to the admins (QA20).
    if (context.endpoint === 'count_tokens') return;
    const team = teamOf(services.snapshot, context);
    if (team === undefined) return;
    // Judged on the byte bound first (no tokenizer on an ordinary request's path); above a threshold,
    // on the prompt counted by the provider's own tokenizer where it has one (exact, never above the bound).
    if (judge(context, team) === undefined) return;
    return refineWorstCasePlan(services.pricing, context).then((plan) => {
      const judgement = judge(context, team);
      if (judgement === undefined) return;
      // Above the whole daily cap of every candidate's provider, no approval could ever be used: the
      // budget's 402 at once, rather than a pending approval, an alert and a 402 after the admin approved.
      const unservable = wholeBudgetRefusal(services, context, team, plan);
      if (unservable !== undefined) throw unservable;
      const id = context.headers.get('x-approval-id')?.trim();
      if (id !== undefined && id !== '') return redeem(context, team, judgement, id);
      return createPending(context, team, judgement, bodyHash(context.request), '');
    });
  }

  function account(context: RequestContext, _outcome: RequestOutcome): void | Promise<void> {
    const state = context.state.get(APPROVALS_PLUGIN) as { redeemed: string } | undefined;
    if (state === undefined || context.served !== undefined) return;
    // Redeemed but never served (a later policy refused it, or every upstream failed before answering):
    // the approval is given back, so the member can re-send it. Once served it stays used, even if the
    // stream then failed or was cut: partial content was delivered and booked (QA qa-teams L2).
    return services.store
      .execute("UPDATE approvals SET status = 'approved', used_at = NULL WHERE id = ? AND status = 'used'", [state.redeemed])
      .then(() => undefined);
  }

  function scopeOf(principal: Principal): { sql: string; parameters: unknown[] } {
    // An account admin sees the account's approvals; a team's admin member only the team's.
    if (principal.teamId !== undefined) return { sql: 'account_id = ? AND team_id = ?', parameters: [principal.accountId, principal.teamId] };
    return { sql: 'account_id = ?', parameters: [principal.accountId] };
  }

  /**
   * A deleted team's pending approvals, still pending (the deletion's own cancel failed, or the team was
   * deleted before deletions closed them), are cancelled as of the team's deletion. `id`: this one only.
   */
  async function sweepDeletedTeams(stamp: string, id?: string): Promise<void> {
    const one = id === undefined ? { sql: '', parameters: [] } : { sql: ' AND id = ?', parameters: [id] };
    await services.store.execute(
      `UPDATE approvals SET status = 'cancelled', reason = ?, decided_at = (SELECT deleted_at FROM teams WHERE teams.id = approvals.team_id) WHERE status = 'pending' AND expires_at > ?${one.sql} AND team_id IN (SELECT id FROM teams WHERE deleted_at IS NOT NULL)`,
      [TEAM_DELETED, stamp, ...one.parameters],
    );
  }

  /** Run by the team's DELETE (plugins/teams/deletion.ts): its pending approvals are cancelled, as its audit entry records. */
  async function cancelWithTeam(deletion: TeamDeletion): Promise<ClosedWithTeam | undefined> {
    const changed = await services.store.query(
      `UPDATE approvals SET status = 'cancelled', reason = ?, decided_by = ?, decided_at = ? WHERE team_id = ? AND account_id = ? AND status = 'pending' AND expires_at > ? RETURNING ${APPROVAL_COLUMNS}`,
      [TEAM_DELETED, deletion.deletedBy, deletion.deletedAt, deletion.teamId, deletion.accountId, deletion.deletedAt],
    );
    if (changed.length === 0) return undefined;
    const cancelled = changed.map((row) => viewOf(row, deletion.deletedAt));
    // A re-send waiting on one of them is answered now, not when its wait ends.
    for (const approval of cancelled) announce(approval.id);
    return {
      before: { pending_approvals: cancelled.map((approval) => ({ ...approval, ...UNDECIDED })) },
      after: { cancelled_approvals: cancelled },
    };
  }

  async function list(principal: Principal, status: string | null): Promise<ApprovalView[]> {
    const stamp = now();
    await services.store.execute("UPDATE approvals SET status = 'expired' WHERE status IN ('pending', 'approved') AND expires_at <= ?", [stamp]);
    await sweepDeletedTeams(stamp);
    const scope = scopeOf(principal);
    let sql = `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE ${scope.sql}`;
    const parameters = [...scope.parameters];
    if (status !== null) {
      if (!(APPROVAL_STATUSES as readonly string[]).includes(status)) {
        throw services.errors.create('invalid_field', { param: 'status', detail: `must be one of ${APPROVAL_STATUSES.join(', ')}` }, { param: 'status' });
      }
      sql += ' AND status = ?';
      parameters.push(status);
    }
    sql += ' ORDER BY created_at DESC, id LIMIT 1000';
    return (await services.store.query(sql, parameters)).map((row) => viewOf(row, stamp));
  }

  /**
   * Four eyes, as conditions of the decision's UPDATE (so a concurrent change cannot slip between a
   * check and the write). The key that asked never decides its own request (a team's admin member would
   * otherwise approve itself past the threshold the account set). A team's admin member decides neither
   * a request asked before it joined (whoever adds members cannot add the second pair of eyes for a
   * request already waiting; a member's re-issued key keeps the day it was added), nor one asked by a
   * key it issued (added that member, or re-issued its key): it holds that key too, so that would be
   * approving its own spend. A key no live member holds decides nothing. Account admins and the
   * operator are bound by the first rule only: an account with one admin could decide nothing else.
   */
  async function fourEyesOf(principal: Principal, stamp: string): Promise<{ sql: string; parameters: unknown[]; member?: { id: string; joinedAt: string } }> {
    if (principal.teamId === undefined) return { sql: '', parameters: [] };
    const member = (await memberOfKey(services.store, principal.keyId)) ?? { id: '', joinedAt: stamp };
    return {
      sql: ' AND created_at >= ? AND NOT EXISTS (SELECT 1 FROM team_members asker WHERE asker.gateway_key_id = approvals.gateway_key_id AND asker.key_issued_by_member = ?)',
      parameters: [member.joinedAt, member.id],
      member,
    };
  }

  async function decide(principal: Principal, id: string, decision: 'approved' | 'denied'): Promise<ApprovalView> {
    const stamp = now();
    const scope = scopeOf(principal);
    const fourEyes = await fourEyesOf(principal, stamp);
    // A deleted team's approvals are closed (cancelWithTeam): none is decided, even in a race with the deletion.
    const changed = await services.store.query(
      `UPDATE approvals SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND ${scope.sql} AND status = 'pending' AND expires_at > ? AND gateway_key_id <> ?${fourEyes.sql} AND team_id IN (SELECT id FROM teams WHERE deleted_at IS NULL) RETURNING ${APPROVAL_COLUMNS}`,
      [decision, principal.keyId, stamp, id, ...scope.parameters, stamp, principal.keyId, ...fourEyes.parameters],
    );
    if (changed[0] !== undefined) {
      announce(id);
      return viewOf(changed[0], stamp);
    }
    await sweepDeletedTeams(stamp, id);
    const rows = await services.store.query(`SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE id = ? AND ${scope.sql}`, [id, ...scope.parameters]);
    if (rows[0] === undefined) throw services.errors.create('not_found', { detail: `No approval ${id} in this account.` });
    throw await refusalOf(principal, viewOf(rows[0], stamp), fourEyes.member, decision);
  }

  /** Why a decision changed nothing, read after the UPDATE: the four-eyes rule it broke, or the state it found. */
  async function refusalOf(
    principal: Principal,
    current: ApprovalView,
    member: { id: string; joinedAt: string } | undefined,
    decision: string,
  ): Promise<Error> {
    const id = current.id;
    if (current.status === 'cancelled') {
      return services.errors.create('conflict', {
        detail: `Approval ${id} was cancelled: its team was deleted${current.decided_at === null ? '' : ` at ${current.decided_at}`}, so it can no longer be ${decision}.`,
      });
    }
    if (current.status !== 'pending') {
      return services.errors.create('conflict', { detail: `Approval ${id} is ${current.status}; only a pending approval can be ${decision}.` });
    }
    if (current.gateway_key_id === principal.keyId) {
      return services.errors.create('permission_denied', { detail: `Approval ${id} was asked for by this key: another admin must decide it.` });
    }
    if (member !== undefined && member.joinedAt > current.created_at) {
      return services.errors.create('permission_denied', {
        detail: `Approval ${id} was asked at ${current.created_at}, before this key's member joined the team: an admin member who was in the team then, or an account admin, must decide it.`,
      });
    }
    if (member !== undefined && (await keyIssuerMember(services.store, current.gateway_key_id)) === member.id) {
      return services.errors.create('permission_denied', {
        detail: `Approval ${id} was asked for by a key this key's member issued (it added that member or re-issued its key, and was handed the key): another admin member of the team, or an account admin, must decide it.`,
      });
    }
    return services.errors.create('conflict', { detail: `Approval ${id} is ${current.status}; only a pending approval can be ${decision}.` });
  }

  return { call, account, list, decide, cancelWithTeam };
}

export const approvalsPolicyPlugin = definePlugin({
  name: APPROVALS_PLUGIN,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'policy',
  dependencies: ['teams'],
  description: "A team's require_approval_above per provider: requests above it wait for an admin's approval, then are served once",
  setup: ({ services }) => {
    const approvals = createApprovals(services);
    onTeamDeleted(services, approvals.cancelWithTeam);
    // A decision only ever moves a pending, undecided approval (decide's UPDATE says so), so that is its before.
    const decided = (request: Request, after: ApprovalView): Response => {
      services.http.recordChange(request, { before: { ...after, ...UNDECIDED }, after });
      return services.http.json(after, 200);
    };
    return {
      hooks: { call: approvals.call, account: approvals.account },
      migrations: { sqlite: APPROVAL_MIGRATIONS, postgres: postgresMigrationsFromSqlite(APPROVAL_MIGRATIONS) },
      routes: [
        {
          method: 'GET',
          path: '/v1/approvals',
          role: 'admin',
          teamKeys: true,
          query: ['status'],
          summary: 'Approvals held by require_approval_above (filter with ?status=pending|approved|denied|used|expired|cancelled)',
          handle: async ({ request, principal }) => {
            const query = services.http.requestUrl(request).searchParams;
            refuseUnknownParameters(query, ['status']);
            const status = query.get('status');
            const found = await approvals.list(principal as Principal, status);
            // Under their plural name, as every list; `data` stays for clients written before.
            return services.http.json({ object: 'list', approvals: found, data: found }, 200);
          },
        },
        {
          method: 'POST',
          path: '/v1/approvals/:id/approve',
          role: 'admin',
          teamKeys: true,
          summary: 'Approves a pending approval: the member may then re-send the request once with X-Approval-Id',
          handle: async ({ request, params, principal }) => decided(request, await approvals.decide(principal as Principal, String(params.id), 'approved')),
        },
        {
          method: 'POST',
          path: '/v1/approvals/:id/deny',
          role: 'admin',
          teamKeys: true,
          summary: 'Denies a pending approval',
          handle: async ({ request, params, principal }) => decided(request, await approvals.decide(principal as Principal, String(params.id), 'denied')),
        },
      ],
    };
  },
});

export default approvalsPolicyPlugin;
