import { api, isAccountAdmin } from '../api.ts';
import { Async, Badge, ErrorBox, Field, Section, Table, useAction, useApi, useForm } from '../components.tsx';
import { percent, time, usd } from '../format.ts';
import { AdminOnly } from './restricted.tsx';
import type { PageProps } from './types.ts';

interface AlertRule {
  id: string;
  type: string;
  name?: string;
  provider?: string;
  /** The team's id (the API resolves a name given at creation). */
  team?: string;
  threshold?: number;
  period?: string;
  notify?: string[];
  channels?: string[];
  created_at: string;
}

interface AlertEvent {
  id: string;
  alert_id: string;
  type: string;
  subject?: string;
  message: string;
  fired_at: string;
  status: string;
}

interface TeamName {
  id: string;
  name: string;
}

/** A cost threshold is in dollars, an error-rate threshold a percentage (docs/alerts.md, "Alert types"). */
function threshold(rule: AlertRule): string {
  if (rule.threshold === undefined) return '–';
  if (rule.type === 'byok_cost_threshold') return usd(rule.threshold);
  if (rule.type === 'error_rate') return percent(rule.threshold);
  return String(rule.threshold);
}

/** The seed's cost alert, the one a finance lead sets first; the other types are in the API (docs/alerts.md). */
function CreateCostAlert({ teams, onCreated }: { teams: TeamName[]; onCreated(): void }) {
  const [values, bind, reset] = useForm({ name: '', threshold: '', period: 'daily', provider: '', team: '', notify: '' });
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      const alert: Record<string, unknown> = {
        type: 'byok_cost_threshold',
        threshold: Number(values.threshold),
        period: values.period,
        notify: values.notify
          .split(',')
          .map((target) => target.trim())
          .filter(Boolean),
      };
      if (values.name.trim() !== '') alert.name = values.name.trim();
      if (values.provider.trim() !== '') alert.provider = values.provider.trim();
      if (values.team !== '') alert.team = values.team;
      await api('/v1/alerts', 'POST', { alerts: [alert] });
      reset({ ...values, name: '', threshold: '' });
      onCreated();
    });
  };
  return (
    <form class="grid-form" onSubmit={submit} aria-label="Create a cost alert">
      <Field label="Name (optional)">
        <input value={values.name} onInput={bind('name')} placeholder="Daily spend" />
      </Field>
      <Field label="Threshold (USD)">
        <input type="number" min="0" step="any" value={values.threshold} onInput={bind('threshold')} required />
      </Field>
      <Field label="Period">
        <select value={values.period} onChange={bind('period')}>
          <option value="daily">daily</option>
          <option value="weekly">weekly</option>
          <option value="monthly">monthly</option>
        </select>
      </Field>
      <Field label="Provider (optional)">
        <input value={values.provider} onInput={bind('provider')} placeholder="all providers" />
      </Field>
      <Field label="Team (optional)">
        <select value={values.team} onChange={bind('team')}>
          <option value="">all teams</option>
          {teams.map((team) => (
            <option value={team.id}>{team.name}</option>
          ))}
        </select>
      </Field>
      <Field label="Notify" hint="comma-separated e-mail addresses or https:// webhook URLs">
        <input value={values.notify} onInput={bind('notify')} required placeholder="finance@company.com" />
      </Field>
      <div>
        <button type="submit" class="primary" disabled={action.busy}>
          Create alert
        </button>
      </div>
      {action.error ? <ErrorBox error={action.error} /> : null}
    </form>
  );
}

export function AlertsPage({ session }: PageProps) {
  const admin = isAccountAdmin(session);
  const rules = useApi<{ alerts: AlertRule[] }>(admin ? '/v1/alerts' : undefined);
  const events = useApi<{ events: AlertEvent[] }>(admin ? '/v1/alerts/events?limit=100' : undefined);
  // Rules name their team by id: the names come from the teams list.
  const teamList = useApi<{ teams?: TeamName[]; data?: TeamName[] }>(admin ? '/v1/teams' : undefined);
  const action = useAction();
  if (!admin) return <AdminOnly session={session} what="Alerts" />;
  const teams = teamList.data?.teams ?? teamList.data?.data ?? [];
  const teamName = (id: string) => teams.find((team) => team.id === id)?.name ?? id;
  const ruleLabel = (rule: AlertRule) => (rule.name ? `"${rule.name}"` : `${rule.type} ${rule.id}`);
  const remove = (rule: AlertRule) => {
    if (!confirm(`Delete the alert ${ruleLabel(rule)}? It stops firing; its past events stay.`)) return;
    void action.run(async () => {
      await api(`/v1/alerts/${encodeURIComponent(rule.id)}`, 'DELETE');
      rules.reload();
    });
  };
  return (
    <>
      <Section title="Rules">
        {action.error ? <ErrorBox error={action.error} /> : null}
        <Async state={rules}>
          {(data) => (
            <Table
              caption="Alert rules"
              empty="No alert rule yet: create a cost alert below; anomaly, error-rate and provider-down alerts are created with POST /v1/alerts."
              rows={data.alerts}
              columns={[
                { label: 'Name', render: (row) => row.name ?? '–' },
                { label: 'Type', render: (row) => row.type },
                // Unset: the rule watches every provider (or team), or its type names none.
                { label: 'Provider', render: (row) => row.provider ?? '–' },
                { label: 'Team', render: (row) => (row.team === undefined ? '–' : teamName(row.team)) },
                { label: 'Threshold', render: (row) => threshold(row), numeric: true },
                { label: 'Period', render: (row) => row.period ?? '–' },
                { label: 'Notify', render: (row) => (row.notify ?? []).join(', ') || '–' },
                { label: 'Created', render: (row) => time(row.created_at) },
                {
                  label: 'Actions',
                  render: (row) => (
                    <button type="button" class="danger" onClick={() => remove(row)} aria-label={`Delete alert ${row.id}`}>
                      Delete
                    </button>
                  ),
                },
              ]}
            />
          )}
        </Async>
      </Section>
      <Section title="Create a cost alert">
        <CreateCostAlert teams={teams} onCreated={rules.reload} />
      </Section>
      <Section title="Events">
        <Async state={events}>
          {(data) => (
            <Table
              caption="Alert events, newest first"
              empty="No alert has fired."
              rows={data.events}
              columns={[
                { label: 'Fired', render: (row) => time(row.fired_at) },
                { label: 'Type', render: (row) => row.type },
                { label: 'Message', render: (row) => row.message },
                { label: 'Delivery', render: (row) => <Badge tone={row.status === 'delivered' ? 'good' : 'warn'}>{row.status}</Badge> },
              ]}
            />
          )}
        </Async>
      </Section>
    </>
  );
}
