// The compliance block (`PUT /v1/settings/compliance`, the seed's `byok_compliance`): validated, stored
// in the account's settings, and answered with a report saying, per setting, whether the running
// system meets it and, when not, what must happen. Nothing is deleted or weakened to meet a setting;
// an unmet setting fires a `compliance` alert instead.

import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import { KEY_REFERENCE_BACKEND } from '../../core/spec/key-source.ts';
import { COMPLIANCE_SETTING, ComplianceEnvelopeSchema, complianceOf, ComplianceSchema, type ComplianceBody, type ComplianceSettings } from './schema.ts';
import { createHash } from 'node:crypto';
import { maskTarget } from '../alerts/deliver.ts';
import { raiseAlert } from '../alerts/raise.ts';
import { checkTarget } from '../alerts/validate.ts';
import type { ComplianceTargets } from './compliance-targets.ts';

export interface SettingReport {
  value: unknown;
  met: boolean;
  /** What must happen for the setting to be met (only when it is not), or how it is met. */
  action?: string;
  note?: string;
  /** never_store_keys: the stored provider keys to convert (ids only). */
  stored_key_ids?: string[];
}

export type ComplianceReport = Record<keyof Omit<ComplianceSettings, 'notify'>, SettingReport>;

/** The seed's envelope (`{"byok_compliance": {...}}`) or the bare block; anything else is a 400. */
export function complianceFromBody(services: Services, body: unknown, storedTargets: readonly string[] = []): ComplianceBody {
  const { validateBody } = services.http;
  const enveloped = body !== null && typeof body === 'object' && !Array.isArray(body) && 'byok_compliance' in body;
  const block = enveloped ? validateBody(ComplianceEnvelopeSchema, body).byok_compliance : validateBody(ComplianceSchema, body);
  // The same targets an alert rule takes: one nothing can deliver to would leave the alert unsent.
  const prefix = enveloped ? 'byok_compliance.notify' : 'notify';
  unmaskTargets(services, block, storedTargets, prefix);
  for (const [index, target] of (block.notify ?? []).entries()) checkTarget(services, target, `${prefix}[${index}]`);
  return block;
}

/** The block as answers and the audit log show it: a webhook or Slack URL is its own secret, so masked. */
function shown(settings: ComplianceSettings): ComplianceSettings {
  return { ...settings, notify: settings.notify.map(maskTarget) };
}

/**
 * A GET's answer PUT back carries the targets masked: each one that is the masked form of a stored
 * target stands for that target (so a read-modify-write keeps them); any other masked text would
 * replace a URL with one that reaches nothing, and is refused naming it.
 */
function unmaskTargets(services: Services, block: ComplianceBody, stored: readonly string[], prefix: string): void {
  const notify = block.notify;
  if (notify === undefined) return;
  for (const [index, target] of notify.entries()) {
    if (!target.includes('…')) continue;
    const original = stored.find((candidate) => maskTarget(candidate) === target);
    if (original === undefined) {
      const param = `${prefix}[${index}]`;
      throw services.errors.create('invalid_field', { param, detail: 'is a masked target that matches no stored target; send the whole URL' }, { param });
    }
    notify[index] = original;
  }
}

/** Which targets, without naming them: 12 hex digits of SHA-256 over the list (empty for none). */
function targetsDigest(targets: string[]): string {
  return targets.length === 0 ? '' : createHash('sha256').update(targets.join('\n')).digest('hex').slice(0, 12);
}

function refuseTeamKeys(services: Services, principal: Principal): void {
  if (principal.teamId !== undefined) {
    throw services.errors.create('permission_denied', { detail: 'Compliance settings are account-wide: use an account admin key, not a team member key.' });
  }
}

export class Compliance {
  constructor(
    private readonly services: Services,
    private readonly defaultRetentionDays: number,
    /** The block's `notify` list, sealed at rest and opened by the snapshot. */
    private readonly targets: ComplianceTargets,
  ) {}

  /**
   * Per settings object and opened list (a snapshot replaces them when either changes): read on every
   * request, from memory.
   */
  private readonly settingsCache = new WeakMap<object, { sealed: readonly string[] | undefined; settings: ComplianceSettings }>();

  settingsOf(accountId: string): ComplianceSettings {
    const stored = this.services.snapshot.current.accounts.get(accountId)?.settings;
    if (stored === undefined) return complianceOf(undefined, this.defaultRetentionDays);
    const sealed = this.targets.of(accountId);
    const cached = this.settingsCache.get(stored);
    if (cached !== undefined && cached.sealed === sealed) return cached.settings;
    const settings = complianceOf(stored, this.defaultRetentionDays);
    // A list still in the settings was written by an earlier release since: it is the newer one.
    if (settings.notify.length === 0) settings.notify = [...(sealed ?? [])];
    this.settingsCache.set(stored, { sealed, settings });
    return settings;
  }

  async get(principal: Principal): Promise<Record<string, unknown>> {
    refuseTeamKeys(this.services, principal);
    const settings = this.settingsOf(principal.accountId);
    return this.answer(settings, await this.report(principal.accountId, settings));
  }

  async put(principal: Principal, request: Request): Promise<Record<string, unknown>> {
    refuseTeamKeys(this.services, principal);
    const block = complianceFromBody(this.services, await this.services.http.readJson(request), this.settingsOf(principal.accountId).notify);
    const { store, snapshot } = this.services;
    const account = snapshot.current.accounts.get(principal.accountId);
    if (account === undefined) throw this.services.errors.create('not_found', { detail: `Account ${principal.accountId} does not exist.` });
    const before = this.settingsOf(principal.accountId);
    // The targets sealed apart: the settings keep the rest of the block.
    const { notify = [], ...unsealed } = block;
    await this.targets.write(principal.accountId, notify);
    await store.updateAccountSettings(principal.accountId, { ...account.settings, [COMPLIANCE_SETTING]: unsealed });
    await snapshot.refresh();
    const settings = this.settingsOf(principal.accountId);
    // The whole block, defaults filled in, not the body: a PUT of one field resets the others, and a
    // compliance officer must see that request logging or FIPS went with it.
    this.services.http.recordChange(request, { before: shown(before), after: shown(settings) });
    const report = await this.report(principal.accountId, settings);
    const alert = this.alertUnmet(principal.accountId, settings, report);
    return { ...this.answer(settings, report), alert };
  }

  private answer(settings: ComplianceSettings, report: ComplianceReport): Record<string, unknown> {
    return {
      object: 'compliance_settings',
      // A webhook or Slack URL is its own secret: answers show it masked, as alert rules do.
      byok_compliance: shown(settings),
      met: Object.values(report).every((entry) => entry.met),
      report,
    };
  }

  /** Whether the running system meets each setting, from the store and the active crypto backend. */
  async report(accountId: string, settings: ComplianceSettings): Promise<ComplianceReport> {
    return {
      data_residency: await this.residency(accountId, settings),
      audit_logging: {
        value: settings.audit_logging,
        met: true,
        note:
          settings.audit_logging === 'all_requests'
            ? 'every management action, and the metadata of every request (endpoint, model, status, tokens, cost, latency, team, project, IP), are logged; prompts never are'
            : 'every management action is logged',
      },
      encryption: this.encryption(settings),
      key_access_logs: {
        value: settings.key_access_logs,
        met: true,
        note: settings.key_access_logs
          ? 'every decryption (or key-source fetch) and every use of a provider key is logged (key id, principal key id, request id, time; never the key)'
          : 'off',
      },
      log_all_requests: {
        value: settings.log_all_requests,
        met: true,
        note: settings.log_all_requests
          ? settings.audit_logging === 'all_requests'
            ? 'each request event carries a SHA-256 fingerprint of the request body; prompt text is never stored'
            : 'takes effect with audit_logging all_requests'
          : 'off: no prompt, and no fingerprint of one, is logged',
      },
      audit_retention_days: {
        value: settings.audit_retention_days,
        met: true,
        note: `audit events older than ${settings.audit_retention_days} days are purged; request events older than that (read from the usage rows, which stay) are no longer listed`,
      },
    };
  }

  private async residency(accountId: string, settings: ComplianceSettings): Promise<SettingReport> {
    if (settings.data_residency !== 'never_store_keys')
      return { value: settings.data_residency, met: true, note: 'provider keys are stored sealed by the crypto backend' };
    // References hold no key material; a key whose ciphertext is stored (encrypted) must be converted.
    const stored = (await this.services.store.listActiveProviderKeys()).filter(
      (key) => key.owner === 'account' && key.accountId === accountId && key.cryptoBackend !== KEY_REFERENCE_BACKEND,
    );
    if (stored.length === 0)
      return {
        value: settings.data_residency,
        met: true,
        note: 'the database holds no provider key material for this account: its keys are references resolved by key sources, or sent per request in X-Provider-Key',
      };
    return {
      value: settings.data_residency,
      met: false,
      action: `${stored.length} provider key(s) of this account are stored (encrypted). Convert each to a key reference resolved by a key-source plugin (POST /v1/providers/keys/{key_id}/convert with a key_reference: it checks the reference yields the same key, then wipes the ciphertext), or delete it and send the key per request in X-Provider-Key. New plaintext keys are refused. Nothing was deleted.`,
      stored_key_ids: stored.map((key) => key.id),
    };
  }

  private encryption(settings: ComplianceSettings): SettingReport {
    const { name, validatedModule } = this.services.crypto;
    if (settings.encryption !== 'FIPS-140-2')
      return { value: settings.encryption, met: true, note: `provider keys are sealed by the '${name}' crypto backend` };
    if (validatedModule?.validated === true) {
      return {
        value: settings.encryption,
        met: true,
        note: `the '${name}' crypto backend runs in ${validatedModule.standard ?? 'a FIPS 140'} validated module ${validatedModule.certificate ?? ''}`.trim(),
      };
    }
    return {
      value: settings.encryption,
      met: false,
      action: `Load a crypto-backend plugin that runs in a FIPS 140-2 (or 140-3) validated module and declares it. The active backend '${name}' is not one${validatedModule === undefined ? '' : `: ${validatedModule.description}`}.`,
    };
  }

  /** A `compliance` alert for the unmet settings, delivered in the background; the answer says where it went. */
  private alertUnmet(accountId: string, settings: ComplianceSettings, report: ComplianceReport): Record<string, unknown> | null {
    const unmet = Object.entries(report).filter(([, entry]) => !entry.met);
    if (unmet.length === 0) return null;
    const { services } = this;
    const event = {
      alertId: services.credentials.randomId('alrt'),
      accountId,
      type: 'compliance',
      message: `Compliance settings not met: ${unmet.map(([name]) => name).join(', ')}`,
      firedAt: new Date(services.clock.now()).toISOString(),
      details: Object.fromEntries(unmet.map(([name, entry]) => [name, { value: entry.value, action: entry.action, stored_key_ids: entry.stored_key_ids }])),
      targets: settings.notify,
    };
    if (event.targets.length === 0)
      services.logger.warn({ accountId, unmet: unmet.map(([name]) => name) }, 'compliance alert has no targets (set byok_compliance.notify)');
    // Through the alerts plugin: recorded in GET /v1/alerts/events, retried, sent to the account's
    // `compliance` alert rules too, and once per day for the same unmet settings.
    raiseAlert(services, {
      accountId,
      type: 'compliance',
      // A changed block (other unmet settings, other targets) is a new subject: it alerts again the same day.
      // The targets are in it as a digest only: the subject is shown in GET /v1/alerts/events and sent in
      // the body, and a webhook URL is often its own credential.
      subject: `${unmet.map(([name]) => name).join(',')}|targets:${targetsDigest(event.targets)}`,
      period: event.firedAt.slice(0, 10),
      message: event.message,
      details: event.details,
      targets: event.targets,
    }).catch((error: unknown) => services.logger.error({ error: error instanceof Error ? error.message : String(error) }, 'compliance alert failed'));
    return { id: event.alertId, type: 'compliance', unmet: unmet.map(([name]) => name), targets: event.targets.map(maskTarget) };
  }
}
