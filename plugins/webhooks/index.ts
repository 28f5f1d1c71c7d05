// Webhooks: the one signed sender every Keyway webhook goes through (alerts now, key rotation later),
// and the account's webhook secret behind it. `POST /v1/settings/webhook-secret` creates or replaces
// the secret and answers it once; it is stored sealed by the crypto backend, never in plaintext.
// Each delivery is `POST <https url>` with the JSON body, `X-Keyway-Event`, `X-Keyway-Delivery` (an id
// receivers de-duplicate on) and `X-Keyway-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
// Before each one the host name is resolved and every answer held to the upstream address rules
// (`services.outbound.admit`); the request then goes to the address that was checked, with the name as
// Host and TLS server name, so a second lookup cannot swap in another. See docs/alerts.md ("Signed webhooks").

import { createHmac } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { tableCiphertextHolder } from '../../core/spec/ciphertext-table.ts';
import type { CiphertextHolder } from '../../core/spec/crypto-backend.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { Principal } from '../../core/spec/principal.ts';
import type { OutboundAdmission, SealedSecret, Services } from '../../core/spec/services.ts';
import { postgresMigrationsFromSqlite } from '../../core/spec/sql-dialects.ts';
import { describeNetworkFailure } from '../../core/wire/outbound.ts';
import type { Migration } from '../../core/spec/store.ts';

export const WEBHOOKS_PLUGIN = 'webhooks';
const DEFAULT_TIMEOUT_MS = 10_000;
const SECRET_PREFIX = 'whsec_';

export interface SignedWebhook {
  accountId: string;
  /** An `https://` URL. */
  url: string;
  /** `X-Keyway-Event`: `alert.byok_cost_threshold`, `key.rotation_started`… */
  event: string;
  /** The raw JSON body, signed as sent. */
  body: string;
  /** `X-Keyway-Delivery`; a new id when absent. Retries of one delivery reuse it. */
  deliveryId?: string;
  timeoutMs?: number;
  /** Extra headers (a channel's own, never a secret). */
  headers?: Record<string, string>;
}

export interface SignedWebhookResult {
  deliveryId: string;
  status: number;
  /** False when the account has no webhook secret yet: the delivery was sent unsigned. */
  signed: boolean;
}

/** `sha256=<hex>`: HMAC-SHA256 of the raw body under the secret. Receivers compute the same and compare. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const binding = (accountId: string): string => `webhook-secret:${accountId}`;

/** The accounts' webhook secrets for master-key rotation: one row per account, bound to it. */
export function webhookSecretHolder(services: Pick<Services, 'store'>): CiphertextHolder {
  return tableCiphertextHolder(services, {
    name: `${WEBHOOKS_PLUGIN}:webhook_secrets`,
    table: 'webhook_secrets',
    idColumn: 'account_id',
    ciphertextColumn: 'ciphertext',
    backendColumn: 'backend',
    keyVersionColumn: 'key_version',
    bindingColumns: [],
    binding: (row) => binding(String(row.account_id)),
  });
}

async function storedSecret(services: Services, accountId: string): Promise<string | undefined> {
  const rows = await services.store.query('SELECT backend, key_version, ciphertext FROM webhook_secrets WHERE account_id = ?', [accountId]);
  const row = rows[0];
  if (row === undefined) return undefined;
  const sealed: SealedSecret = { backend: String(row.backend), keyVersion: Number(row.key_version), ciphertext: String(row.ciphertext) };
  return services.secrets.open(sealed, binding(accountId));
}

export interface WebhookSenderOptions {
  fetch: typeof fetch;
  /** Scrubs key-shaped text: `services.errors.redact`. (Errors are built from codes, never from fetch's text.) */
  redact(text: string): string;
  /** The account's webhook secret, or undefined when it has none (the delivery goes unsigned). */
  secretOf(accountId: string): Promise<string | undefined>;
  newDeliveryId(): string;
  /** Called once per account that sends unsigned. */
  warnUnsigned?(accountId: string): void;
  /**
   * The address rules, before every delivery (`services.outbound.admit`): refused or unresolved, the
   * delivery fails without a request; admitted with an address, the request goes to that address.
   * Without it (unit tests of the signing alone) the URL is fetched as it is.
   */
  admit?(url: string): Promise<OutboundAdmission>;
}

export interface WebhookSender {
  /**
   * Sends one signed webhook. Resolves when the receiver answered 2xx; rejects otherwise with a message
   * that never names the URL (it may hold a token) nor the secret.
   */
  send(webhook: SignedWebhook): Promise<SignedWebhookResult>;
}

export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const warned = new Set<string>();
  return {
    async send(webhook) {
      if (!/^https:\/\/[^\s/]+/i.test(webhook.url)) throw new Error('webhook targets must be https:// URLs');
      const deliveryId = webhook.deliveryId ?? options.newDeliveryId();
      const secret = await options.secretOf(webhook.accountId);
      const headers: Record<string, string> = {
        ...webhook.headers,
        'content-type': 'application/json',
        'user-agent': 'Keyway-Webhooks/1',
        'x-keyway-event': webhook.event,
        'x-keyway-delivery': deliveryId,
      };
      if (secret !== undefined) headers['x-keyway-signature'] = webhookSignature(secret, webhook.body);
      else if (!warned.has(webhook.accountId)) {
        warned.add(webhook.accountId);
        options.warnUnsigned?.(webhook.accountId);
      }
      const timeoutMs = webhook.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      // Checked at every delivery, not only when the target was saved: DNS answers and the rules change.
      const admission = options.admit === undefined ? undefined : await admitWithin(options.admit, webhook.url, timeoutMs);
      if (admission !== undefined && !admission.allowed) throw new Error(refusalMessage(admission));
      const request = pinnedRequest(webhook.url, admission?.address, headers);
      let response: Response;
      try {
        // Redirects are not followed: a receiver could otherwise bounce the signed body to another host.
        response = await options.fetch(request.url, {
          method: 'POST',
          headers: request.headers,
          body: webhook.body,
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
          ...request.options,
        });
      } catch (error) {
        // From the error's class and code only: fetch's message quotes the URL it fetched, which holds the
        // target's path and query (often its token) and, once pinned, the checked address.
        throw new Error(`the webhook could not be reached: ${describeNetworkFailure(error, timeoutMs)}`);
      }
      await response.body?.cancel();
      if (response.status < 200 || response.status > 299) throw new Error(`the webhook answered HTTP ${response.status}`);
      return { deliveryId, status: response.status, signed: secret !== undefined };
    },
  };
}

/** The delivery's error when the address rules refuse it: the rule, never the URL (it may hold a token) nor the address. */
function refusalMessage(admission: Extract<OutboundAdmission, { allowed: false }>): string {
  if (admission.kind === 'unresolved') return `the webhook's host name ${admission.reason}; nothing was sent`;
  return `the webhook's address is refused: it ${admission.reason}`;
}

/**
 * The admission, or an unresolved one once the delivery's own timeout passes: a resolver that hangs
 * must not hold a delivery (and its retries) longer than an unanswered request would.
 */
async function admitWithin(admit: (url: string) => Promise<OutboundAdmission>, url: string, timeoutMs: number): Promise<OutboundAdmission> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<OutboundAdmission>((resolve) => {
    timer = setTimeout(() => resolve({ allowed: false, kind: 'unresolved', reason: `could not be resolved within ${timeoutMs} ms` }), timeoutMs);
  });
  try {
    return await Promise.race([admit(url), expired]);
  } finally {
    clearTimeout(timer);
  }
}

export interface PinnedRequest {
  url: string;
  headers: Record<string, string>;
  /** Bun's fetch options that keep TLS verified against the name while connecting to the address. */
  options: { tls?: { serverName: string }; keepalive?: boolean };
}

/**
 * The request aimed at `address` rather than at the URL's host name: the URL carries the address, the
 * Host header the original host, and TLS sends the name as SNI and verifies the certificate against it
 * (Bun's `tls.serverName`), so the receiver and its certificate check see what they would have without
 * pinning. Keep-alive is off: a pooled connection to a shared address must not carry another name's request.
 */
export function pinnedRequest(target: string, address: string | undefined, headers: Record<string, string>): PinnedRequest {
  if (address === undefined) return { url: target, headers, options: {} };
  const url = new URL(target);
  const name = url.hostname;
  const host = url.host;
  url.hostname = address.includes(':') ? `[${address}]` : address;
  return { url: url.href, headers: { ...headers, host }, options: { tls: { serverName: name }, keepalive: false } };
}

/** One sender per gateway (its services), reading each account's secret from the store. */
const senders = new WeakMap<Services, WebhookSender>();

export function webhookSenderFor(services: Services): WebhookSender {
  let sender = senders.get(services);
  if (sender === undefined) {
    sender = createWebhookSender({
      fetch: services.fetch,
      admit: (url) => services.outbound.admit(url),
      redact: services.errors.redact,
      secretOf: (accountId) => storedSecret(services, accountId),
      newDeliveryId: () => services.credentials.randomId('whd'),
      warnUnsigned: (accountId) =>
        services.logger.warn({ accountId }, 'webhooks are sent unsigned: the account has no webhook secret (POST /v1/settings/webhook-secret)'),
    });
    senders.set(services, sender);
  }
  return sender;
}

/** The product's one signed sender: alerts and key rotation call this. */
export function sendSignedWebhook(services: Services, webhook: SignedWebhook): Promise<SignedWebhookResult> {
  return webhookSenderFor(services).send(webhook);
}

function newSecret(): string {
  return `${SECRET_PREFIX}${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')}`;
}

/**
 * The row is overwritten; the files may still hold it as it was (the WAL's earlier page image), where
 * the replaced secret would open for whoever holds the master key and a copy. The new secret is stored
 * and answered once whatever happens here, so a store too busy to reclaim now is logged, not answered.
 */
async function reclaimReplacedSecret(services: Services): Promise<void> {
  await services.store.reclaimReplacedRows?.(['webhook_secrets'])?.catch((error: unknown) => {
    services.logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'the replaced webhook secret is left to the next WAL checkpoint');
  });
}

async function replaceSecret(services: Services, request: Request, principal: Principal): Promise<Response> {
  if (principal.teamId !== undefined)
    throw services.errors.create('permission_denied', { detail: "The webhook secret is the account's: use an account admin key." });
  const secret = newSecret();
  const sealed = await services.secrets.seal(secret, binding(principal.accountId));
  const now = new Date(services.clock.now()).toISOString();
  const previous = await services.store.query('SELECT created_at, created_by FROM webhook_secrets WHERE account_id = ?', [principal.accountId]);
  await services.store.execute(
    `INSERT INTO webhook_secrets (account_id, backend, key_version, ciphertext, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (account_id) DO UPDATE SET backend = excluded.backend, key_version = excluded.key_version, ciphertext = excluded.ciphertext,
       created_at = excluded.created_at, created_by = excluded.created_by`,
    [principal.accountId, sealed.backend, sealed.keyVersion, sealed.ciphertext, now, principal.keyId],
  );
  if (previous.length > 0) await reclaimReplacedSecret(services);
  const answer = {
    object: 'webhook_secret',
    secret,
    algorithm: 'HMAC-SHA256',
    header: 'X-Keyway-Signature',
    created_at: now,
    replaced: previous.length > 0,
    note: 'Shown once. Keyway stores it encrypted and never answers it again; POST again to replace it.',
  };
  // The audit entry says which secret this replaced, by when and by whom it was made: never either secret.
  const made = (row: Record<string, unknown> | undefined) =>
    row === undefined ? null : { algorithm: 'HMAC-SHA256', created_at: String(row.created_at), created_by: String(row.created_by) };
  services.http.recordChange(request, { before: made(previous[0]), after: made({ created_at: now, created_by: principal.keyId }) });
  return services.http.json(answer, 201);
}

const WEBHOOK_MIGRATIONS: Migration[] = [
  {
    id: '0001_webhook_secrets',
    statements: [
      `CREATE TABLE webhook_secrets (
              account_id TEXT PRIMARY KEY,
              backend TEXT NOT NULL,
              key_version INTEGER NOT NULL,
              ciphertext TEXT NOT NULL,
              created_at TEXT NOT NULL,
              created_by TEXT NOT NULL
            )`,
    ],
  },
];

export const webhooksPlugin = definePlugin({
  name: WEBHOOKS_PLUGIN,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'extension',
  description: "The account's webhook secret and the signed sender every Keyway webhook uses",
  setup: ({ services }) => ({
    migrations: { sqlite: WEBHOOK_MIGRATIONS, postgres: postgresMigrationsFromSqlite(WEBHOOK_MIGRATIONS) },
    ciphertextHolders: [webhookSecretHolder(services)],
    routes: [
      {
        method: 'POST',
        path: '/v1/settings/webhook-secret',
        role: 'admin',
        summary: "Creates or replaces the account's webhook signing secret; the answer is the only time it is shown",
        response: Type.Object({ object: Type.Literal('webhook_secret'), secret: Type.String(), created_at: Type.String(), replaced: Type.Boolean() }),
        handle: ({ request, principal }) => replaceSecret(services, request, principal as Principal),
      },
    ],
  }),
});

export default webhooksPlugin;
