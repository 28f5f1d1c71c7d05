import { isAccountAdmin } from '../api.ts';
import { Async, Badge, Section, Table, useApi } from '../components.tsx';
import { percent, time } from '../format.ts';
import { AdminOnly } from './restricted.tsx';
import type { PageProps } from './types.ts';

interface Rotation {
  id: string;
  status: string;
  provider: string;
  rotation_strategy: string;
  started_at: string;
  old_key_expires_at: string;
  new_key_share: number;
  completed_at: string | null;
}

interface Schedule {
  id: string;
  provider: string;
  schedule: string;
  timezone: string;
  rotation_strategy: string;
  next_run_at: string;
  last_run_at: string | null;
  last_status: string | null;
}

export function RotationPage({ session }: PageProps) {
  const admin = isAccountAdmin(session);
  const rotations = useApi<{ rotations: Rotation[] }>(admin ? '/v1/providers/keys/rotations' : undefined);
  const schedules = useApi<{ schedules: Schedule[] }>(admin ? '/v1/providers/keys/rotation-schedule' : undefined);
  if (!admin) return <AdminOnly session={session} what="Key rotation" />;
  return (
    <>
      <Section title="Rotations">
        <Async state={rotations}>
          {(data) => (
            <Table
              caption="Provider-key rotations, in progress and done"
              empty="No rotation yet: rotate a key on the Providers page."
              rows={data.rotations}
              columns={[
                { label: 'Provider', render: (row) => row.provider },
                { label: 'Status', render: (row) => <Badge tone={row.status === 'completed' ? 'good' : 'warn'}>{row.status.replace('_', ' ')}</Badge> },
                { label: 'Strategy', render: (row) => row.rotation_strategy },
                { label: 'New key share', render: (row) => percent(row.new_key_share * 100), numeric: true },
                { label: 'Started', render: (row) => time(row.started_at) },
                { label: 'Old key expires', render: (row) => time(row.old_key_expires_at) },
              ]}
            />
          )}
        </Async>
      </Section>
      <Section title="Schedules">
        <Async state={schedules}>
          {(data) => (
            <Table
              caption="Rotation schedules"
              empty="No schedule. Create one with POST /v1/providers/keys/rotation-schedule."
              rows={data.schedules}
              columns={[
                { label: 'Provider', render: (row) => row.provider },
                { label: 'Schedule', render: (row) => <code>{row.schedule}</code> },
                { label: 'Timezone', render: (row) => row.timezone },
                { label: 'Next run', render: (row) => time(row.next_run_at) },
                { label: 'Last run', render: (row) => (row.last_run_at ? `${time(row.last_run_at)} (${row.last_status ?? '–'})` : 'never') },
              ]}
            />
          )}
        </Async>
      </Section>
    </>
  );
}
