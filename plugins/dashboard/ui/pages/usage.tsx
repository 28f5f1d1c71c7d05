import { useMemo, useState } from 'preact/hooks';
import { isAccountAdmin, request } from '../api.ts';
import { Async, Chart, ErrorBox, Field, Section, Stat, Table, useAction, useApi, type Column } from '../components.tsx';
import { day, integer, milliseconds, percent, requests, tokens, usd } from '../format.ts';
import { AdminOnly } from './restricted.tsx';
import { fillDays, type ByokAnalytics, type Figures, type PageProps } from './types.ts';

/** Null figures when every served request of the period is unpriced. */
interface Comparison {
  byok: { provider_costs: number | null; platform_fees: number | null; total: number | null };
  parrotrouter: { total: number | null };
  savings: number | null;
  savings_percentage: number | null;
}

const PERIODS = [
  ['today', 'Today'],
  ['current_month', 'This month'],
  ['last_30_days', 'Last 30 days'],
  ['last_quarter', 'Last quarter'],
] as const;

function figureColumns<Row extends Figures>(first: Column<Row>): Array<Column<Row>> {
  return [
    first,
    { label: 'Requests', render: (row) => requests(row.requests), numeric: true },
    { label: 'Cost', render: (row) => usd(row.estimated_cost), numeric: true },
    { label: 'Input', render: (row) => tokens(row.tokens.input), numeric: true },
    { label: 'Output', render: (row) => tokens(row.tokens.output), numeric: true },
    { label: 'Latency', render: (row) => milliseconds(row.avg_latency_ms), numeric: true },
    { label: 'Unpriced', render: (row) => row.unpriced_requests, numeric: true },
  ];
}

function Export({ period }: { period: string }) {
  const action = useAction();
  const [done, setDone] = useState<string | undefined>(undefined);
  const run = () =>
    void action.run(async () => {
      const response = await request('/v1/billing/export', 'POST', { type: 'all_usage', period, format: 'csv' });
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = document.createElement('a');
      link.href = url;
      link.download = `keyway-usage-${period}.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
      setDone(`Exported ${(blob.size / 1024).toFixed(1)} KB of CSV.`);
    });
  return (
    <span class="actions">
      <button type="button" onClick={run} disabled={action.busy}>
        {action.busy ? 'Exporting…' : 'Export CSV'}
      </button>
      {done ? (
        <span class="muted" role="status">
          {done}
        </span>
      ) : null}
      {action.error ? <ErrorBox error={action.error} /> : null}
    </span>
  );
}

function Charts({ data }: { data: ByokAnalytics }) {
  const { x, days } = useMemo(() => fillDays(data), [data]);
  const cost = useMemo(
    () => [
      { label: 'Total', values: days.map((entry) => entry?.estimated_cost ?? 0) },
      { label: 'BYOK', values: days.map((entry) => entry?.byok_estimated_cost ?? 0) },
    ],
    [days],
  );
  const count = useMemo(() => [{ label: 'Requests', values: days.map((entry) => entry?.requests ?? 0) }], [days]);
  return (
    <div class="two">
      <Section title="Cost per day">
        <Chart title="Cost per day in US dollars" x={x} series={cost} unit="USD" format={usd} />
      </Section>
      <Section title="Requests per day">
        <Chart title="Requests per day" x={x} series={count} unit="requests" format={integer} whole />
      </Section>
    </div>
  );
}

export function UsagePage({ session }: PageProps) {
  const [period, setPeriod] = useState('current_month');
  const admin = isAccountAdmin(session);
  const analytics = useApi<ByokAnalytics>(admin ? `/v1/analytics/byok?period=${period}&group_by=model,team,project,day` : undefined);
  const comparison = useApi<Comparison>(admin ? `/v1/analytics/cost-comparison?period=${period}` : undefined);
  if (!admin) return <AdminOnly session={session} what="Account usage" />;
  return (
    <>
      <div class="toolbar">
        <Field label="Period">
          <select value={period} onChange={(event) => setPeriod(event.currentTarget.value)}>
            {PERIODS.map(([value, label]) => (
              <option value={value}>{label}</option>
            ))}
          </select>
        </Field>
        <Export period={period} />
      </div>
      <Async state={analytics}>
        {(data) => (
          <>
            <div class="stats">
              <Stat label="Cost" value={usd(data.estimated_costs)} detail={`${usd(data.byok_estimated_costs)} BYOK · ${usd(data.platform_estimated_costs)} platform`} />
              <Stat label="Requests" value={requests(data.total_requests)} detail={`${data.unserved_requests} refused or unserved`} />
              <Stat label="Tokens" value={tokens(data.tokens.input + data.tokens.output)} detail={`${tokens(data.tokens.input)} in · ${tokens(data.tokens.output)} out`} />
            </div>
            <Charts data={data} />
            <Section title="By provider">
              <Table caption="Usage by provider" empty="No usage in this period." rows={data.by_provider} columns={figureColumns({ label: 'Provider', render: (row) => row.name })} />
            </Section>
            <Section title="By model">
              <Table
                caption="Usage by model"
                empty="No usage in this period."
                rows={data.by_model ?? []}
                columns={figureColumns<Figures & { name: string; provider: string }>({ label: 'Model', render: (row) => `${row.provider} / ${row.name}` })}
              />
            </Section>
            <Section title="By team">
              <Table caption="Usage by team" empty="No usage in this period." rows={data.by_team ?? []} columns={figureColumns({ label: 'Team', render: (row) => row.name ?? 'no team' })} />
            </Section>
            <Section title="By project">
              <Table caption="Usage by project" empty="No usage in this period." rows={data.by_project ?? []} columns={figureColumns({ label: 'Project', render: (row) => row.name ?? 'untagged' })} />
            </Section>
            <Section title="By day">
              <Table caption="Usage by day" empty="No usage in this period." rows={[...(data.by_day ?? [])].reverse()} columns={figureColumns<Figures & { day: string }>({ label: 'Day (UTC)', render: (row) => day(row.day) })} />
            </Section>
          </>
        )}
      </Async>
      <Section title="Cost comparison">
        <Async state={comparison}>
          {(data) => (
            <div class="stats">
              <Stat label="With your own keys" value={usd(data.byok.total)} detail={`${usd(data.byok.provider_costs)} providers · ${usd(data.byok.platform_fees)} fees`} />
              <Stat label="Through a reseller" value={usd(data.parrotrouter.total)} />
              <Stat label="Savings" value={usd(data.savings)} detail={percent(data.savings_percentage)} />
            </div>
          )}
        </Async>
      </Section>
    </>
  );
}
