import { useEffect, useState } from 'preact/hooks';
import { api, isAccountAdmin } from '../api.ts';
import { ErrorBox, Field, Loading, Section, Table } from '../components.tsx';
import { time } from '../format.ts';
import { AdminOnly } from './restricted.tsx';
import type { PageProps } from './types.ts';

interface AuditEvent {
  id: string;
  type: string;
  occurred_at: string;
  actor: { key_id: string; role: string; team_id: string | null } | null;
  ip: string | null;
  action: string;
  target: unknown;
  status: number | null;
}

interface AuditPage {
  events: AuditEvent[];
  has_more: boolean;
  next_cursor: string | null;
}

export function AuditPage({ session }: PageProps) {
  const [type, setType] = useState('admin');
  const [period, setPeriod] = useState('last_30_days');
  const [events, setEvents] = useState<AuditEvent[] | undefined>(undefined);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const admin = isAccountAdmin(session);
  const load = async (from: string | null) => {
    setBusy(true);
    setError(undefined);
    try {
      const query = new URLSearchParams({ type, period, limit: '50' });
      if (from) query.set('cursor', from);
      const page = await api<AuditPage>(`/v1/audit-logs?${query}`);
      setEvents((previous) => (from ? [...(previous ?? []), ...page.events] : page.events));
      setCursor(page.has_more ? page.next_cursor : null);
    } catch (failure) {
      setError(failure as Error);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    if (admin) void load(null);
  }, [type, period, admin]);
  if (!admin) return <AdminOnly session={session} what="The audit log" />;
  return (
    <Section
      title="Events"
      actions={
        <span class="actions">
          <Field label="Type">
            <select value={type} onChange={(event) => setType(event.currentTarget.value)}>
              <option value="admin">admin actions</option>
              <option value="key_access">key access</option>
              <option value="request">requests</option>
            </select>
          </Field>
          <Field label="Period">
            <select value={period} onChange={(event) => setPeriod(event.currentTarget.value)}>
              <option value="today">today</option>
              <option value="last_30_days">last 30 days</option>
              <option value="last_quarter">last quarter</option>
            </select>
          </Field>
        </span>
      }
    >
      {error ? <ErrorBox error={error} /> : null}
      {events === undefined ? (
        <Loading />
      ) : (
        <Table
          caption="Audit events, newest first"
          empty="No event of this type in this period."
          rows={events}
          columns={[
            { label: 'When', render: (row) => time(row.occurred_at) },
            { label: 'Action', render: (row) => <code>{row.action}</code> },
            { label: 'Actor', render: (row) => (row.actor ? `${row.actor.role} ${row.actor.key_id}` : '–') },
            { label: 'Target', render: (row) => <code>{typeof row.target === 'string' ? row.target : JSON.stringify(row.target ?? '')}</code> },
            { label: 'Status', render: (row) => row.status ?? '–', numeric: true },
            { label: 'IP', render: (row) => row.ip ?? '–' },
          ]}
        />
      )}
      {cursor ? (
        <button type="button" onClick={() => void load(cursor)} disabled={busy}>
          Load more
        </button>
      ) : null}
    </Section>
  );
}
