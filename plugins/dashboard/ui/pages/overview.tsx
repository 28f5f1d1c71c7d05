import { useEffect, useMemo } from 'preact/hooks';
import { isAccountAdmin } from '../api.ts';
import { Async, Chart, Section, Stat, Table, useApi } from '../components.tsx';
import { milliseconds, percent, requests, usd } from '../format.ts';
import { fillDays, type ByokAnalytics, type PageProps } from './types.ts';

interface Budget {
  provider: string;
  limit_usd: number;
  spent_today_usd: number;
  remaining_usd: number;
  resets_at: string;
}

interface MyUsage {
  totals: { requests: number; cost_usd: number | null };
  budgets?: Budget[];
}

/**
 * The share of today's requests answered with an error. `total_requests` counts served requests only
 * and `unserved_requests` the refused ones, so together they are every request; `errors` already
 * counts the refusals (status >= 400, docs/analytics.md), so adding them again counted each twice.
 */
const errorRate = (data: ByokAnalytics): number | null => {
  const all = data.total_requests + data.unserved_requests;
  return all === 0 ? null : (data.errors / all) * 100;
};

/** Marks, for the Performance API, the moment the Overview's first figures are on screen (once per page load). */
function useFiguresMark(ready: boolean): void {
  useEffect(() => {
    if (ready && performance.getEntriesByName('keyway:overview-figures').length === 0) requestAnimationFrame(() => performance.mark('keyway:overview-figures'));
  }, [ready]);
}

function AccountOverview() {
  const today = useApi<ByokAnalytics>('/v1/analytics/byok?period=today');
  const month = useApi<ByokAnalytics>('/v1/analytics/byok?period=current_month&group_by=day');
  const mine = useApi<MyUsage>('/v1/usage/me?period=today');
  useFiguresMark(today.data !== undefined);
  return (
    <>
      <div class="stats" aria-label="Spend">
        <Async state={today}>
          {(data) => (
            <>
              <Stat label="Spend today" value={usd(data.estimated_costs)} detail={`${usd(data.byok_estimated_costs)} on your own keys`} />
              <Stat label="Requests today" value={requests(data.total_requests)} detail={`${data.unpriced_requests} unpriced`} />
              <Stat label="Error rate today" value={percent(errorRate(data))} detail={`${data.errors} failed or refused`} />
              <Stat label="Fallbacks today" value={requests(data.fallback_requests)} detail="served after a failed attempt" />
              <Stat label="Average latency" value={milliseconds(data.avg_latency_ms)} />
            </>
          )}
        </Async>
        <Async state={month}>{(data) => <Stat label="Spend this month" value={usd(data.estimated_costs)} detail={requests(data.total_requests)} />}</Async>
      </div>
      <Section title="Spend this month, by day">
        <Async state={month}>{(data) => <SpendChart data={data} />}</Async>
      </Section>
      <Section title="Budgets">
        <Async state={mine}>{(data) => <Budgets budgets={data.budgets ?? []} />}</Async>
      </Section>
    </>
  );
}

function SpendChart({ data }: { data: ByokAnalytics }) {
  const { x, days } = useMemo(() => fillDays(data), [data]);
  const series = useMemo(() => [{ label: 'Spend', values: days.map((entry) => entry?.estimated_cost ?? 0) }], [days]);
  return <Chart title="Spend per day this month, in US dollars" x={x} series={series} unit="USD" format={usd} />;
}

function Budgets({ budgets }: { budgets: Budget[] }) {
  return (
    <Table
      caption="Daily budgets of your team"
      empty="No daily budget applies to this key. Team budgets are set on the Teams page (max cost per day)."
      rows={budgets}
      columns={[
        { label: 'Provider', render: (row) => row.provider },
        { label: 'Limit per day', render: (row) => usd(row.limit_usd), numeric: true },
        { label: 'Spent today', render: (row) => usd(row.spent_today_usd), numeric: true },
        { label: 'Remaining', render: (row) => usd(row.remaining_usd), numeric: true },
      ]}
    />
  );
}

function MemberOverview() {
  const today = useApi<MyUsage>('/v1/usage/me?period=today');
  const month = useApi<MyUsage>('/v1/usage/me?period=current_month');
  useFiguresMark(today.data !== undefined);
  return (
    <>
      <div class="stats">
        <Async state={today}>
          {(data) => (
            <>
              <Stat label="Your spend today" value={usd(data.totals.cost_usd)} />
              <Stat label="Your requests today" value={requests(data.totals.requests)} />
            </>
          )}
        </Async>
        <Async state={month}>{(data) => <Stat label="Your spend this month" value={usd(data.totals.cost_usd)} detail={requests(data.totals.requests)} />}</Async>
      </div>
      <Section title="Budgets">
        <Async state={today}>{(data) => <Budgets budgets={data.budgets ?? []} />}</Async>
      </Section>
    </>
  );
}

export function OverviewPage({ session }: PageProps) {
  return isAccountAdmin(session) ? <AccountOverview /> : <MemberOverview />;
}
