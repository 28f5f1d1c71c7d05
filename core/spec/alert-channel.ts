// The alert-channel contract: delivers an alert event to a target it accepts.

export interface AlertEvent {
  alertId: string;
  accountId: string;
  type: string;
  message: string;
  firedAt: string;
  details: Record<string, unknown>;
  targets: string[];
  /** What fired (a provider, a team, an approval id…) and the period it fired in (`2026-12-05`, `once`): as `GET /v1/alerts/events` shows them. */
  subject?: string;
  period?: string;
}

export interface AlertChannel {
  name: string;
  /** Whether this channel delivers to a target (`https://…`, `someone@example.com`, `slack:#ops`). */
  accepts(target: string): boolean;
  /** Rejects when delivery failed; the caller retries. Never includes secrets in what it sends. */
  send(event: AlertEvent, target: string): Promise<void>;
}

export interface AlertDelivery {
  target: string;
  channel: string | undefined;
  ok: boolean;
  error?: string;
}
