// The answer to a request held for approval: 403 `approval_required` naming the pending approval the
// member re-sends the request with, its worst case and expiry (index.ts, when an approval is asked for
// or found already waiting for the same body).

import { formatNanos, formatUsd } from '../../core/catalog/nano-usd.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { Services } from '../../core/spec/services.ts';
import type { TeamView } from '../../plugins/teams/types.ts';
import { outputAssumption, outputAssumptionFields, outputLimitHint } from '../cost-cap/worst-case.ts';
import type { ApprovalView } from './records.ts';

/** The largest worst case above its provider's threshold among a request's candidates. */
export interface Judgement {
  provider: string;
  model: string;
  worstNanos: number;
  thresholdNanos: number;
}

/** 403 `approval_required` naming the pending approval the member re-sends the request with. */
export function approvalRequired(
  services: Services,
  context: RequestContext,
  team: TeamView,
  judgement: Judgement,
  approval: ApprovalView,
  prefix: string,
): never {
  // A worst case swollen by the model's whole output limit is the usual reason a small request needs an approval.
  const assumption = outputAssumption(services.pricing, context, judgement.provider, judgement.model);
  throw services.errors.create(
    'approval_required',
    {
      detail:
        `${prefix}This request may cost up to ${formatUsd(approval.worst_case_usd)} on ${approval.provider} (${approval.model}), above team '${team.name}'s ` +
        `require_approval_above of ${formatNanos(judgement.thresholdNanos)}. Approval ${approval.id} is pending: once an admin approves it, ` +
        `send the same request again with the header X-Approval-Id: ${approval.id}. It expires at ${approval.expires_at}.` +
        outputLimitHint(assumption, context.endpoint, ', and a request whose worst case stays under the threshold needs no approval'),
    },
    {
      extra: {
        approval_id: approval.id,
        approval_status: 'pending',
        worst_case_usd: approval.worst_case_usd,
        ...outputAssumptionFields(assumption),
        expires_at: approval.expires_at,
      },
    },
  );
}
