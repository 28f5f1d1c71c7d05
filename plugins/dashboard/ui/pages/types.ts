import type { Session } from '../api.ts';

export interface PageProps {
  session: Session;
}

export interface Figures {
  name?: string | null;
  requests: number;
  estimated_cost: number;
  byok_estimated_cost: number;
  unpriced_requests: number;
  errors: number;
  avg_latency_ms: number | null;
  unserved_requests?: number;
  tokens: { input: number; output: number };
}

export interface ByokAnalytics {
  total_requests: number;
  estimated_costs: number;
  byok_estimated_costs: number;
  platform_estimated_costs: number;
  unpriced_requests: number;
  unserved_requests: number;
  errors: number;
  avg_latency_ms: number | null;
  tokens: { input: number; output: number };
  by_provider: Array<Figures & { name: string; models_used: string[] }>;
  by_model?: Array<Figures & { name: string; provider: string }>;
  by_team?: Array<Figures & { team_id: string | null }>;
  by_project?: Figures[];
  by_day?: Array<Figures & { day: string }>;
  by_hour?: Array<Figures & { hour: string }>;
}

export const dayToSeconds = (day: string): number => Date.parse(`${day}T00:00:00Z`) / 1000;
