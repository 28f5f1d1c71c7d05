import { api, isAdmin } from '../api.ts';
import { Async, Badge, ErrorBox, Section, Table, useAction, useApi } from '../components.tsx';
import { time } from '../format.ts';
import { AdminOnly } from './restricted.tsx';
import type { PageProps } from './types.ts';

interface AlertRule {
  id: string;
  type: string;
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

export function AlertsPage({ session }: PageProps) {
  const admin = isAdmin(session);
  const rules = useApi<{ alerts: AlertRule[] }>(admin ? '/v1/alerts' : undefined);
  const events = useApi<{ events: AlertEvent[] }>(admin ? '/v1/alerts/events?limit=100' : undefined);
  const action = useAction();
  if (!admin) return <AdminOnly session={session} what="Alerts" />;
  const remove = (rule: AlertRule) =>
    void action.run(async () => {
      await api(`/v1/alerts/${encodeURIComponent(rule.id)}`, 'DELETE');
      rules.reload();
    });
  return (
    <>
      <Section title="Rules">
        {action.error ? <ErrorBox error={action.error} /> : null}
        <Async state={rules}>
          {(data) => (
            <Table
              caption="Alert rules"
              empty="No alert rule. Create them with POST /v1/alerts (budget, spend spike, error rate, key health)."
              rows={data.alerts}
              columns={[
                { label: 'Type', render: (row) => row.type },
                { label: 'Threshold', render: (row) => (row.threshold === undefined ? '–' : String(row.threshold)), numeric: true },
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
