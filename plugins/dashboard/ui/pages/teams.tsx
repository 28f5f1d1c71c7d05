import { useEffect, useRef, useState } from 'preact/hooks';
import { api, isAccountAdmin, isAdmin } from '../api.ts';
import { Async, ErrorBox, Field, Section, Table, useAction, useApi, useForm } from '../components.tsx';
import { time, usd } from '../format.ts';
import { AdminOnly } from './restricted.tsx';
import type { PageProps } from './types.ts';

interface ProviderPermission {
  enabled: boolean;
  models?: string[];
  max_cost_per_day?: number;
  require_approval_above?: number;
}

interface Member {
  id: string;
  email: string;
  role: string;
  byok_access: boolean;
  /** Null when the member's key was revoked outside the team (DELETE /v1/keys/{id}): re-issue it. */
  masked_key: string | null;
  key_status?: 'active' | 'revoked';
  created_at: string;
  api_key?: string;
}

interface Team {
  id: string;
  name: string;
  byok_permissions: { providers?: Record<string, ProviderPermission> };
  members: Member[];
  created_at: string;
}

const optionalNumber = (text: string): number | undefined => (text.trim() === '' ? undefined : Number(text));

// Money fields take any amount (step="any"): with step="0.01" the browser refused to submit a policy
// whose approval threshold is $0.005, a value the API accepts and the seed's teams use.

/** The member keys of a team just created or a key just issued: shown once, never again. */
function IssuedKeys({ members, onDismiss }: { members: Member[]; onDismiss(): void }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    box.current?.scrollIntoView({ block: 'nearest' });
    box.current?.focus();
  }, [members]);
  return (
    <div class="issued" role="alert" tabIndex={-1} ref={box}>
      <h3>Member keys: copy them now</h3>
      <p>Keyway stores only a hash: these keys are shown once and cannot be shown again.</p>
      <ul>
        {members.map((member) => (
          <li>
            {member.email} ({member.role}): <code class="secret">{member.api_key}</code>
          </li>
        ))}
      </ul>
      <button type="button" onClick={onDismiss}>
        I have copied them
      </button>
    </div>
  );
}

function CreateTeam({ onCreated }: { onCreated(team: Team): void }) {
  const [values, bind, reset] = useForm({ name: '', provider: 'openai', models: '', max_cost_per_day: '', require_approval_above: '', members: '' });
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      const permission: ProviderPermission = { enabled: true };
      const models = values.models.split(',').map((model) => model.trim()).filter(Boolean);
      if (models.length > 0) permission.models = models;
      const cap = optionalNumber(values.max_cost_per_day);
      if (cap !== undefined) permission.max_cost_per_day = cap;
      const approval = optionalNumber(values.require_approval_above);
      if (approval !== undefined) permission.require_approval_above = approval;
      const members = values.members
        .split(/[\n,]/)
        .map((line) => line.trim())
        .filter(Boolean)
        .map((line) => {
          const [email, role] = line.split(/\s+/);
          return { email, role: role ?? 'developer' };
        });
      const team = await api<Team>('/v1/teams', 'POST', { name: values.name.trim(), byok_permissions: { providers: { [values.provider.trim()]: permission } }, members });
      reset({ ...values, name: '', members: '' });
      onCreated(team);
    });
  };
  return (
    <form class="grid-form" onSubmit={submit} aria-label="Create a team">
      <Field label="Team name">
        <input value={values.name} onInput={bind('name')} required />
      </Field>
      <Field label="Provider">
        <input value={values.provider} onInput={bind('provider')} required />
      </Field>
      <Field label="Allowed models" hint="comma-separated, * globs; empty allows all">
        <input value={values.models} onInput={bind('models')} placeholder="gpt-4o-mini, gpt-4o*" />
      </Field>
      <Field label="Max cost per day (USD)">
        <input type="number" min="0" step="any" value={values.max_cost_per_day} onInput={bind('max_cost_per_day')} />
      </Field>
      <Field label="Require approval above (USD)">
        <input type="number" min="0" step="any" value={values.require_approval_above} onInput={bind('require_approval_above')} />
      </Field>
      <Field label="Members" hint="one per line: email and role (developer, viewer, admin)">
        <textarea rows={3} value={values.members} onInput={bind('members')} placeholder="ana@example.com developer" />
      </Field>
      <div>
        <button type="submit" class="primary" disabled={action.busy}>
          Create team
        </button>
      </div>
      {action.error ? <ErrorBox error={action.error} /> : null}
    </form>
  );
}

function EditPolicy({ team, onSaved }: { team: Team; onSaved(): void }) {
  const entries = Object.entries(team.byok_permissions.providers ?? {});
  const [provider, first] = entries[0] ?? ['openai', { enabled: true } as ProviderPermission];
  const [values, bind] = useForm({
    provider,
    enabled: String(first.enabled),
    models: (first.models ?? []).join(', '),
    max_cost_per_day: first.max_cost_per_day === undefined ? '' : String(first.max_cost_per_day),
    require_approval_above: first.require_approval_above === undefined ? '' : String(first.require_approval_above),
  });
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      const models = values.models.split(',').map((model) => model.trim()).filter(Boolean);
      const permission = {
        enabled: values.enabled === 'true',
        models: models.length > 0 ? models : null,
        max_cost_per_day: optionalNumber(values.max_cost_per_day) ?? null,
        require_approval_above: optionalNumber(values.require_approval_above) ?? null,
      };
      await api(`/v1/teams/${encodeURIComponent(team.id)}`, 'PATCH', { byok_permissions: { providers: { [values.provider.trim()]: permission } } });
      onSaved();
    });
  };
  return (
    <form class="grid-form" onSubmit={submit} aria-label={`Policy of ${team.name}`}>
      <Field label="Provider">
        <input value={values.provider} onInput={bind('provider')} required />
      </Field>
      <Field label="Enabled">
        <select value={values.enabled} onChange={bind('enabled')}>
          <option value="true">yes</option>
          <option value="false">no</option>
        </select>
      </Field>
      <Field label="Allowed models">
        <input value={values.models} onInput={bind('models')} />
      </Field>
      <Field label="Max cost per day (USD)">
        <input type="number" min="0" step="any" value={values.max_cost_per_day} onInput={bind('max_cost_per_day')} />
      </Field>
      <Field label="Require approval above (USD)">
        <input type="number" min="0" step="any" value={values.require_approval_above} onInput={bind('require_approval_above')} />
      </Field>
      <div>
        <button type="submit" disabled={action.busy}>
          Save policy
        </button>
      </div>
      {action.error ? <ErrorBox error={action.error} /> : null}
    </form>
  );
}

function AddMember({ team, onIssued }: { team: Team; onIssued(member: Member): void }) {
  const [values, bind, reset] = useForm({ email: '', role: 'developer' });
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      const member = await api<Member>(`/v1/teams/${encodeURIComponent(team.id)}/members`, 'POST', { email: values.email.trim(), role: values.role });
      reset({ email: '', role: values.role });
      onIssued(member);
    });
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label={`Add a member to ${team.name}`}>
      <Field label="Member email">
        <input type="email" value={values.email} onInput={bind('email')} required />
      </Field>
      <Field label="Member role">
        <select value={values.role} onChange={bind('role')}>
          <option value="developer">developer</option>
          <option value="viewer">viewer</option>
          <option value="admin">admin</option>
        </select>
      </Field>
      <button type="submit" disabled={action.busy}>
        Add member
      </button>
      {action.error ? <ErrorBox error={action.error} /> : null}
    </form>
  );
}

/**
 * A member's key re-issued (the new key shown once, the old one revoked at once) or the member removed
 * (its key revoked). The server decides who may: a team's admin member re-issuing an admin's key, or
 * removing its own member, is refused, and the refusal is shown as the API phrased it.
 */
function useMemberActions(team: Team, onChange: () => void, onIssued: (member: Member) => void) {
  const action = useAction();
  const path = (member: Member) => `/v1/teams/${encodeURIComponent(team.id)}/members/${encodeURIComponent(member.id)}`;
  const reissue = (member: Member) => {
    if (!confirm(`Issue a new key for ${member.email}? Their current key stops working at once.`)) return;
    void action.run(async () => {
      onIssued(await api<Member>(`${path(member)}/keys`, 'POST'));
      onChange();
    });
  };
  const remove = (member: Member) => {
    if (!confirm(`Remove ${member.email} from ${team.name}? Their key stops working at once.`)) return;
    void action.run(async () => {
      await api(path(member), 'DELETE');
      onChange();
    });
  };
  return { action, reissue, remove };
}

function TeamCard({ team, policyEditable, onChange, onIssued }: { team: Team; policyEditable: boolean; onChange(): void; onIssued(member: Member): void }) {
  const [editing, setEditing] = useState(false);
  const members = useMemberActions(team, onChange, onIssued);
  const permissions = Object.entries(team.byok_permissions.providers ?? {});
  return (
    <Section
      title={team.name}
      actions={
        // A team's policy is the account admin's: a team's own admin manages its members only.
        policyEditable ? (
          <button type="button" onClick={() => setEditing(!editing)} aria-expanded={editing}>
            {editing ? 'Close policy' : 'Edit policy'}
          </button>
        ) : null
      }
    >
      <p class="muted">
        {team.id} · created {time(team.created_at)}
      </p>
      <ul class="policy">
        {permissions.length === 0 ? <li>No provider policy: the account's keys apply as they are.</li> : null}
        {permissions.map(([provider, permission]) => (
          <li>
            <strong>{provider}</strong>: {permission.enabled ? 'enabled' : 'disabled'}
            {permission.models ? ` · models ${permission.models.join(', ')}` : ''}
            {permission.max_cost_per_day !== undefined ? ` · ${usd(permission.max_cost_per_day)} per day` : ''}
            {permission.require_approval_above !== undefined ? ` · approval above ${usd(permission.require_approval_above)}` : ''}
          </li>
        ))}
      </ul>
      {editing ? (
        <EditPolicy
          team={team}
          onSaved={() => {
            setEditing(false);
            onChange();
          }}
        />
      ) : null}
      {members.action.error ? <ErrorBox error={members.action.error} /> : null}
      <Table
        caption={`Members of ${team.name}`}
        empty="No member yet."
        rows={team.members}
        columns={[
          { label: 'Email', render: (row) => row.email },
          { label: 'Role', render: (row) => row.role },
          { label: 'BYOK access', render: (row) => (row.byok_access ? 'yes' : 'no') },
          { label: 'Key', render: (row) => (row.masked_key === null ? <span class="muted">revoked: re-issue its key</span> : <code>{row.masked_key}</code>) },
          {
            label: 'Actions',
            render: (row) => (
              <span class="actions">
                <button type="button" onClick={() => members.reissue(row)} disabled={members.action.busy} aria-label={`Re-issue the key of ${row.email}`}>
                  Re-issue key
                </button>
                <button type="button" class="danger" onClick={() => members.remove(row)} disabled={members.action.busy} aria-label={`Remove ${row.email} from ${team.name}`}>
                  Remove
                </button>
              </span>
            ),
          },
        ]}
      />
      <AddMember
        team={team}
        onIssued={(member) => {
          onIssued(member);
          onChange();
        }}
      />
    </Section>
  );
}

export function TeamsPage({ session }: PageProps) {
  const teams = useApi<{ teams?: Team[]; data?: Team[] }>(isAdmin(session) ? '/v1/teams' : undefined);
  const [issued, setIssued] = useState<Member[]>([]);
  if (!isAdmin(session)) return <AdminOnly session={session} what="Managing teams" />;
  return (
    <>
      {issued.length > 0 ? <IssuedKeys members={issued} onDismiss={() => setIssued([])} /> : null}
      {isAccountAdmin(session) ? (
        <Section title="Create a team">
          <CreateTeam
            onCreated={(team) => {
              setIssued(team.members.filter((member) => member.api_key !== undefined));
              teams.reload();
            }}
          />
        </Section>
      ) : null}
      <Async state={teams}>
        {(data) => {
          const list = data.teams ?? data.data ?? [];
          return list.length === 0 ? <p class="empty">No team yet: create one above.</p> : list.map((team) => (
                <TeamCard team={team} policyEditable={isAccountAdmin(session)} onChange={teams.reload} onIssued={(member) => setIssued([member])} />
              ));
        }}
      </Async>
    </>
  );
}
