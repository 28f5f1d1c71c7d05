import type { Session } from '../api.ts';

export interface PageProps {
  session: Session;
}

export interface Figures {
  name?: string | null;
  requests: number;
  /** Null when every served request of the group is unpriced (shown as "unpriced"). */
  estimated_cost: number | null;
  byok_estimated_cost: number | null;
  unpriced_requests: number;
  errors: number;
  avg_latency_ms: number | null;
  unserved_requests?: number;
  tokens: { input: number; output: number };
}

export interface ByokAnalytics {
  period?: { name: string; start: string; end: string };
  total_requests: number;
  estimated_costs: number | null;
  byok_estimated_costs: number | null;
  platform_estimated_costs: number | null;
  unpriced_requests: number;
  unserved_requests: number;
  errors: number;
  /** Served after at least one failed attempt. */
  fallback_requests: number;
  avg_latency_ms: number | null;
  tokens: { input: number; output: number };
  by_provider: Array<Figures & { name: string; models_used: string[] }>;
  by_model?: Array<Figures & { name: string; provider: string }>;
  by_team?: Array<Figures & { team_id: string | null }>;
  by_project?: Figures[];
  by_day?: Array<Figures & { day: string }>;
  by_hour?: Array<Figures & { hour: string }>;
}

const DAY_MS = 86_400_000;

/** Every UTC day of the answer's period up to today, zero where nothing was used: a chart with no gaps. */
export function fillDays(data: ByokAnalytics): { x: number[]; days: Array<Figures | undefined> } {
  const byDay = new Map((data.by_day ?? []).map((entry) => [entry.day, entry]));
  const first = data.period ? Date.parse(data.period.start) : Date.parse(`${data.by_day?.[0]?.day ?? new Date().toISOString().slice(0, 10)}T00:00:00Z`);
  const last = Math.min(data.period ? Date.parse(data.period.end) - 1 : Date.now(), Date.now());
  const x: number[] = [];
  const days: Array<Figures | undefined> = [];
  for (let stamp = Math.floor(first / DAY_MS) * DAY_MS; stamp <= last && x.length < 400; stamp += DAY_MS) {
    x.push(stamp / 1000);
    days.push(byDay.get(new Date(stamp).toISOString().slice(0, 10)));
  }
  return { x, days };
}
