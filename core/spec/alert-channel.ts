// The alert-channel contract: delivers an alert event to a target it accepts.

export interface AlertEvent {
  alertId: string;
  accountId: string;
  type: string;
  message: string;
  firedAt: string;
  details: Record<string, unknown>;
  targets: string[];
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
