import { useState } from 'preact/hooks';
import { api, isAdmin } from '../api.ts';
import { Async, Badge, ErrorBox, Field, Section, Table, useAction, useApi } from '../components.tsx';
import { time, usd } from '../format.ts';
import { AdminOnly } from './restricted.tsx';
import type { PageProps } from './types.ts';

interface Approval {
  id: string;
  team_id: string;
  provider: string;
  model: string;
  worst_case_usd: number;
  status: string;
  created_at: string;
  expires_at: string;
  decided_at?: string | null;
}

const STATUSES = ['pending', 'approved', 'denied', 'used', 'expired', 'cancelled'];

export function ApprovalsPage({ session }: PageProps) {
  const [status, setStatus] = useState('pending');
  const approvals = useApi<{ data: Approval[] }>(isAdmin(session) ? `/v1/approvals?status=${status}` : undefined);
  const action = useAction();
  if (!isAdmin(session)) return <AdminOnly session={session} what="Deciding approvals" />;
  const decide = (approval: Approval, decision: 'approve' | 'deny') =>
    void action.run(async () => {
      await api(`/v1/approvals/${encodeURIComponent(approval.id)}/${decision}`, 'POST');
      approvals.reload();
    });
  return (
    <Section
      title="Requests waiting for an admin"
      actions={
        <Field label="Status">
          <select value={status} onChange={(event) => setStatus(event.currentTarget.value)}>
            {STATUSES.map((name) => (
              <option value={name}>{name}</option>
            ))}
          </select>
        </Field>
      }
    >
      {action.error ? <ErrorBox error={action.error} /> : null}
      <Async state={approvals}>
        {(data) => (
          <Table
            caption={`Approvals (${status})`}
            empty={status === 'pending' ? 'Nothing waits for approval.' : `No ${status} approval.`}
            rows={data.data}
            columns={[
              { label: 'Requested', render: (row) => time(row.created_at) },
              { label: 'Team', render: (row) => row.team_id },
              { label: 'Model', render: (row) => `${row.provider} / ${row.model}` },
              { label: 'Worst case', render: (row) => usd(row.worst_case_usd), numeric: true },
              { label: 'Expires', render: (row) => time(row.expires_at) },
              { label: 'Status', render: (row) => <Badge tone={row.status === 'approved' ? 'good' : row.status === 'pending' ? 'warn' : 'plain'}>{row.status}</Badge> },
              {
                label: 'Decision',
                render: (row) =>
                  row.status === 'pending' ? (
                    <span class="actions">
                      <button type="button" class="primary" disabled={action.busy} onClick={() => decide(row, 'approve')} aria-label={`Approve ${row.id}`}>
                        Approve
                      </button>
                      <button type="button" class="danger" disabled={action.busy} onClick={() => decide(row, 'deny')} aria-label={`Deny ${row.id}`}>
                        Deny
                      </button>
                    </span>
                  ) : (
                    '–'
                  ),
              },
            ]}
          />
        )}
      </Async>
    </Section>
  );
}
