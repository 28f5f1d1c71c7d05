// The contract other plugins use to raise an alert the alerts plugin does not detect itself:
// `rotation_due` (key rotation schedules), `approval_pending` (approvals), and any future type.
//
//   import { raiseAlert } from '../../plugins/alerts/raise.ts';
//   await raiseAlert(services, { accountId, type: 'approval_pending', subject: approval.id, message, targets: adminEmails,
//     match: { team: team.id } });
//
// The alert goes to the given targets plus the `notify` list of every alert of that type in the account
// whose filters match, is recorded in `GET /v1/alerts/events`, retried, and fires once per
// (type, subject, period). Without the alerts plugin loaded, it is handed to the channels directly.

import type { Services } from '../../core/spec/services.ts';
import type { StoredEvent } from './store.ts';

export interface RaisedAlert {
  accountId: string;
  type: 'rotation_due' | 'approval_pending' | (string & {});
  /** What the alert is about: an approval id, a provider key id. */
  subject: string;
  /** The de-duplication period: the same (type, subject, period) fires once. Default `once`. */
  period?: string;
  message: string;
  details?: Record<string, unknown>;
  /** Targets of this alert besides the account's configured alerts of its type (a team's admins). */
  targets?: string[];
  /** Matched against the configured alerts' filters: an alert naming another provider or team is skipped. */
  match?: { provider?: string; team?: string };
}

export type Raiser = (alert: RaisedAlert) => Promise<StoredEvent | undefined>;

/** One raiser per running gateway, keyed by its services object (tests run several in one process). */
const raisers = new WeakMap<Services, Raiser>();

export function registerRaiser(services: Services, raiser: Raiser): void {
  raisers.set(services, raiser);
}

/** Raises an alert; resolves with the recorded event, or undefined when it was a duplicate or not recorded. */
export async function raiseAlert(services: Services, alert: RaisedAlert): Promise<StoredEvent | undefined> {
  const raiser = raisers.get(services);
  if (raiser !== undefined) return raiser(alert);
  if (alert.targets === undefined || alert.targets.length === 0) return undefined;
  await services.alerts.fire({
    alertId: services.credentials.randomId('alert'),
    accountId: alert.accountId,
    type: alert.type,
    message: alert.message,
    firedAt: new Date(services.clock.now()).toISOString(),
    details: alert.details ?? {},
    targets: alert.targets,
  });
  return undefined;
}
