// What an alert rule may say, checked the same way by POST /v1/alerts and PATCH /v1/alerts/{id}
// (each field named in the 400: `alerts[0].period` in a create, `period` in a PATCH), and the check of
// a `notify` target that the compliance and reconciliation settings share.

import type { Services } from '../../core/spec/services.ts';
import type { TeamsSection } from '../teams/types.ts';
import { maskTarget } from './deliver.ts';
import { ALERT_TYPES, RULE_SCHEMAS, takesProvider, type AlertType } from './schema.ts';

const EMAIL = /^[^\s@<>(),;:"[\]]+@[^\s@<>(),;:"[\]]+\.[^\s@<>(),;:"[\]]+$/;
/** Slack's incoming-webhook URLs: workspace (T…), channel hook (B…) and its secret, nothing after. */
const SLACK_WEBHOOK = /^https:\/\/hooks\.slack(-gov)?\.com\/services\/T[A-Z0-9]+\/B[A-Z0-9]+\/[A-Za-z0-9_-]+$/i;
const SLACK_HOST = /^https:\/\/hooks\.slack(-gov)?\.com(\/|$)/i;

/** A field's name as errors give it: `alerts[0].period` in a create, `period` in a PATCH. */
export function fieldOf(prefix: string, field: string): string {
  return prefix === '' ? field : `${prefix}${field.startsWith('[') ? '' : '.'}${field}`;
}

/** Validates one alert (an entry of `alerts[]`, or a rule merged with a PATCH) against its type's schema, naming the field under `prefix`. */
export function validateEntry(services: Services, entry: Record<string, unknown>, prefix: string): AlertType {
  const type = entry.type as string;
  if (!(ALERT_TYPES as readonly string[]).includes(type)) {
    const param = fieldOf(prefix, 'type');
    throw services.errors.create('invalid_field', { param, detail: `must be one of ${ALERT_TYPES.join(', ')}` }, { param });
  }
  checkProvider(services, entry, type as AlertType, prefix);
  try {
    services.http.validateBody(RULE_SCHEMAS[type as AlertType], entry);
  } catch (error) {
    if (!(error instanceof services.errors.KeywayError)) throw error;
    const param = fieldOf(prefix, error.param ?? 'body');
    if (error.code === 'missing_field') throw services.errors.create('missing_field', { param }, { param });
    const detail = error.message.replace(/^Invalid value for '[^']*': /, '');
    throw services.errors.create('invalid_field', { param, detail }, { param });
  }
  return type as AlertType;
}

/**
 * A rule's provider must be a loaded provider: a misspelt or aliased name (`openaii`, `gemini` for
 * `google`) matches no usage row, so the alert would never fire. Checked before the schema, whose
 * pattern alone could not say which names are valid; a value that is not text is left to the schema.
 */
function checkProvider(services: Services, entry: Record<string, unknown>, type: AlertType, prefix: string): void {
  const provider = entry.provider;
  if (typeof provider !== 'string' || !takesProvider(type)) return;
  const known = services.providerKeys.providers();
  if (known.includes(provider)) return;
  const param = fieldOf(prefix, 'provider');
  const detail = `unknown provider '${provider.slice(0, 64)}'; known providers: ${known.join(', ')}`;
  throw services.errors.create('invalid_field', { param, detail }, { param });
}

/** Refuses (400 naming `param`) a target no channel can deliver to, or one at an address Keyway may not call. */
export function checkTarget(services: Services, target: string, param: string): void {
  // A webhook at the cloud metadata address, a private network or Keyway itself is refused up front.
  const refused = /^https?:\/\//i.test(target) ? services.outbound.refusal(target) : undefined;
  if (refused !== undefined) throw services.errors.create('invalid_field', { param, detail: `this address ${refused}` }, { param });
  // Slack's hosts go to the Slack channel whatever the path: one that is not an incoming webhook's
  // (a workspace URL pasted by mistake, a cut-off token) would be accepted and fail at every firing.
  if (SLACK_HOST.test(target) && !SLACK_WEBHOOK.test(target)) {
    const detail = 'a Slack target must be an incoming-webhook URL, https://hooks.slack.com/services/T…/B…/…';
    throw services.errors.create('invalid_field', { param, detail }, { param });
  }
  if (services.alerts.channelFor(target) !== undefined) return;
  if (EMAIL.test(target)) return;
  if (/^https:\/\/[^\s/]+/i.test(target)) {
    try {
      new URL(target);
      return;
    } catch {
      // falls through to the error below
    }
  }
  const detail = /^http:\/\//i.test(target)
    ? 'webhooks must use https://'
    : 'must be an e-mail address, an https:// webhook or Slack incoming-webhook URL, or a target an alert channel plugin accepts';
  throw services.errors.create('invalid_field', { param, detail }, { param });
}

export function resolveTeam(services: Services, accountId: string, team: string, param: string): string {
  const teams = services.snapshot.section<TeamsSection>('teams')?.byId;
  for (const view of teams?.values() ?? []) {
    if (view.accountId === accountId && (view.id === team || view.name === team)) return view.id;
  }
  throw services.errors.create('invalid_field', { param, detail: 'no team with this id or name in the account' }, { param });
}

/** Checks each target and says which no loaded channel delivers to yet (accepted, recorded as undelivered when it fires). */
export function checkNotify(services: Services, notify: readonly string[], prefix: string, warnings: string[]): void {
  notify.forEach((target, position) => {
    const param = fieldOf(prefix, `notify[${position}]`);
    checkTarget(services, target, param);
    if (services.alerts.channelFor(target) === undefined) {
      warnings.push(
        `${param}: no alert channel delivers to ${maskTarget(target)} yet` +
          (EMAIL.test(target) ? ' (set KEYWAY_SMTP_URL for e-mail)' : '') +
          '; its firings are recorded as undelivered.',
      );
    }
  });
}
