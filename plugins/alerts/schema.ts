// The alert rules POST /v1/alerts accepts: the seed's `{ "alerts": [ … ] }`, one schema per type, and
// the stored rule they become. Unknown fields are refused (a typo like `treshold` must not silently
// make an alert that never fires).

import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';

export const ALERT_TYPES = [
  'byok_cost_threshold',
  'byok_usage_anomaly',
  'error_rate',
  'provider_down',
  'rotation_due',
  'approval_pending',
  // Raised by other plugins (raise.ts): the compliance settings check, and reconciliation drift.
  'compliance',
  'reconciliation_drift',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];
export const COST_PERIODS = ['daily', 'weekly', 'monthly'] as const;
export type CostPeriod = (typeof COST_PERIODS)[number];
export const SENSITIVITIES = ['low', 'medium', 'high'] as const;
export type Sensitivity = (typeof SENSITIVITIES)[number];
export const ANOMALY_METRICS = ['spend', 'requests', 'error_rate'] as const;
export type AnomalyMetric = (typeof ANOMALY_METRICS)[number];

const Notify = Type.Array(Type.String({ minLength: 3, maxLength: 2000 }), {
  minItems: 1,
  maxItems: 20,
  description: 'E-mail addresses, https:// webhooks and Slack incoming-webhook URLs',
});
const Name = Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'A label for people' }));
const Provider = Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$', description: 'A provider name: openai, anthropic…' });
const Team = Type.String({ minLength: 1, maxLength: 200, description: "A team's id or name" });

const common = { type: Type.String(), name: Name, notify: Notify };
const closed = { additionalProperties: false } as const;

export const RULE_SCHEMAS: Record<AlertType, TSchema> = {
  byok_cost_threshold: Type.Object(
    {
      ...common,
      provider: Type.Optional(Provider),
      team: Type.Optional(Team),
      threshold: Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000_000, description: 'USD' }),
      period: Type.Optional(
        Type.Union(
          COST_PERIODS.map((period) => Type.Literal(period)),
          { description: 'daily, weekly or monthly (UTC); default daily' },
        ),
      ),
    },
    closed,
  ),
  byok_usage_anomaly: Type.Object(
    {
      ...common,
      provider: Type.Optional(Provider),
      sensitivity: Type.Optional(
        Type.Union(
          SENSITIVITIES.map((value) => Type.Literal(value)),
          { description: 'low, medium or high; default medium' },
        ),
      ),
      metrics: Type.Optional(
        Type.Array(Type.Union(ANOMALY_METRICS.map((value) => Type.Literal(value))), { minItems: 1, maxItems: 3, description: 'spend, requests, error_rate' }),
      ),
    },
    closed,
  ),
  error_rate: Type.Object(
    {
      ...common,
      provider: Type.Optional(Provider),
      threshold: Type.Number({ exclusiveMinimum: 0, maximum: 100, description: 'percent of requests that failed' }),
      window_minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1440, description: 'default 15' })),
      min_requests: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'default 20' })),
    },
    closed,
  ),
  provider_down: Type.Object({ ...common, provider: Type.Optional(Provider) }, closed),
  rotation_due: Type.Object({ ...common, provider: Type.Optional(Provider) }, closed),
  approval_pending: Type.Object({ ...common, team: Type.Optional(Team) }, closed),
  compliance: Type.Object({ ...common }, closed),
  reconciliation_drift: Type.Object({ ...common, provider: Type.Optional(Provider) }, closed),
};

/** Whether a type's rules may name a provider; for the others the schema refuses the field as unknown. */
export function takesProvider(type: AlertType): boolean {
  return 'provider' in (RULE_SCHEMAS[type] as TObject).properties;
}

/** The envelope: each alert is checked against its type's own schema (RULE_SCHEMAS) by the route. */
export const AlertsBodySchema = Type.Object(
  { alerts: Type.Array(Type.Object({ type: Type.String() }, { additionalProperties: true }), { minItems: 1, maxItems: 50 }) },
  // A field beside `alerts` (`replace_existing`) would be dropped while the alerts are added: refused, as every envelope.
  { additionalProperties: false },
);

/** PATCH /v1/alerts/{id}: a JSON merge patch of the fields a rule of the alert's type takes, checked against that type's schema by the route. */
export const AlertPatchSchema = Type.Object({}, { additionalProperties: true, description: 'a JSON merge patch of the fields POST takes (null removes one)' });

/** A stored rule, as the evaluator and the answers read it. `team` is resolved to the team's id. */
export interface AlertRule {
  id: string;
  accountId: string;
  type: AlertType;
  name: string | undefined;
  notify: string[];
  /** Its sealed targets did not open (targets.ts): it has none until `notify` is set again. */
  notifyUnreadable: boolean;
  provider: string | undefined;
  team: string | undefined;
  threshold: number | undefined;
  period: CostPeriod | undefined;
  sensitivity: Sensitivity | undefined;
  metrics: AnomalyMetric[] | undefined;
  windowMinutes: number | undefined;
  minRequests: number | undefined;
  createdAt: string;
  /** When PATCH last changed it; undefined for a rule never changed. */
  updatedAt: string | undefined;
}

export type RuleBody = Static<(typeof RULE_SCHEMAS)['byok_cost_threshold']> & Record<string, unknown>;

/** The rule's own settings with the defaults filled in, as stored in the `config` column. */
export function ruleConfig(type: AlertType, body: Record<string, unknown>, teamId: string | undefined): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  if (body.name !== undefined) config.name = body.name;
  if (body.provider !== undefined) config.provider = body.provider;
  if (teamId !== undefined) config.team = teamId;
  if (type === 'byok_cost_threshold') Object.assign(config, { threshold: body.threshold, period: body.period ?? 'daily' });
  if (type === 'byok_usage_anomaly') Object.assign(config, { sensitivity: body.sensitivity ?? 'medium', metrics: body.metrics ?? [...ANOMALY_METRICS] });
  if (type === 'error_rate')
    Object.assign(config, { threshold: body.threshold, window_minutes: body.window_minutes ?? 15, min_requests: body.min_requests ?? 20 });
  return config;
}

/** A rule's targets as opened (targets.ts); `unreadable` when its sealed list did not open (no targets meanwhile). */
export interface RuleTargets {
  targets: string[];
  unreadable: boolean;
}

/** A stored rule; its targets come opened (targets.ts): the row holds them sealed. */
export function ruleOf(row: Record<string, unknown>, targets: RuleTargets): AlertRule {
  const config = JSON.parse(String(row.config)) as Record<string, unknown>;
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  const number = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);
  return {
    id: String(row.id),
    accountId: String(row.account_id),
    type: String(row.type) as AlertType,
    name: text(config.name),
    notify: targets.targets,
    notifyUnreadable: targets.unreadable,
    provider: text(config.provider),
    team: text(config.team),
    threshold: number(config.threshold),
    period: text(config.period) as CostPeriod | undefined,
    sensitivity: text(config.sensitivity) as Sensitivity | undefined,
    metrics: Array.isArray(config.metrics) ? (config.metrics as AnomalyMetric[]) : undefined,
    windowMinutes: number(config.window_minutes),
    minRequests: number(config.min_requests),
    createdAt: String(row.created_at),
    updatedAt: row.updated_at === null || row.updated_at === undefined ? undefined : String(row.updated_at),
  };
}
