// HashiCorp Vault Transit simulator: `GET /v1/<mount>/keys/:name`, `POST .../keys/:name/rotate`,
// `POST .../encrypt|decrypt|rewrap/:name` (single and `batch_input`), as strict as Vault about what
// Keyway relies on: X-Vault-Token (403 "permission denied"), X-Vault-Namespace (no route outside it),
// unknown keys, base64 plaintext and context, `vault:vN:` ciphertexts, min_decryption_version,
// derived keys (a context is required and must match), `partial_failure_response_code`. Answers and
// errors are shaped like Vault's (`{"data": …}`, `{"errors": [...]}`).

import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

export interface TransitSimulatorKey {
  derived?: boolean;
  type?: 'aes256-gcm96' | 'chacha20-poly1305';
  /** How many versions exist at start (each a fresh random key). */
  versions?: number;
  minDecryptionVersion?: number;
}

export interface TransitSimulatorOptions {
  token: string;
  namespace?: string;
  mount?: string;
  keys: Record<string, TransitSimulatorKey>;
}

interface KeyState {
  derived: boolean;
  type: string;
  versions: Buffer[];
  minDecryptionVersion: number;
}

export interface TransitSimulator {
  url: string;
  /** Calls by operation (`encrypt`, `decrypt`, `rewrap`, `read`, `rotate`), batch items counted one each. */
  calls: Record<string, number>;
  /** Every request body seen, as text: for canary scans of what Keyway sends Vault. */
  bodies: string[];
  rotate(name: string): number;
  setMinDecryptionVersion(name: string, version: number): void;
  stop(): Promise<void>;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(text: unknown): Buffer | undefined {
  if (typeof text !== 'string' || !BASE64.test(text) || text.length % 4 !== 0) return undefined;
  return Buffer.from(text, 'base64');
}

const errors = (status: number, ...messages: string[]): Response => Response.json({ errors: messages }, { status });

function keyFor(state: KeyState, version: number, context: Buffer | undefined): Buffer | string {
  const base = state.versions[version - 1];
  if (base === undefined) return 'invalid key version';
  if (!state.derived) return base;
  if (context === undefined || context.length === 0) {
    return "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key";
  }
  // Stands in for Vault's SP 800-108 counter-mode KDF: one HMAC-SHA256 per context.
  return createHmac('sha256', base).update(context).digest();
}

type ItemResult = { ciphertext?: string; plaintext?: string; key_version?: number; error?: string };

function encryptItem(state: KeyState, item: Record<string, unknown>): ItemResult {
  const plaintext = decodeBase64(item.plaintext);
  if (plaintext === undefined) return { error: 'failed to base64-decode plaintext' };
  const context = item.context === undefined ? undefined : decodeBase64(item.context);
  if (item.context !== undefined && context === undefined) return { error: 'failed to base64-decode context' };
  const version = item.key_version === undefined || item.key_version === 0 ? state.versions.length : Number(item.key_version);
  if (!Number.isInteger(version) || version < 1 || version > state.versions.length) return { error: 'invalid key version' };
  const key = keyFor(state, version, context);
  if (typeof key === 'string') return { error: key };
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { ciphertext: `vault:v${version}:${Buffer.concat([nonce, body]).toString('base64')}`, key_version: version };
}

function decryptItem(state: KeyState, item: Record<string, unknown>): ItemResult {
  const text = item.ciphertext;
  if (typeof text !== 'string' || text === '') return { error: 'missing ciphertext to decrypt' };
  const match = /^vault:v(\d+):(.*)$/s.exec(text);
  if (match === null) return { error: 'invalid ciphertext: no prefix' };
  const version = Number(match[1]);
  if (version < state.minDecryptionVersion) return { error: 'ciphertext or signature version is disallowed by policy (too old)' };
  if (version > state.versions.length) return { error: 'invalid ciphertext: invalid key version' };
  const bytes = decodeBase64(match[2]);
  if (bytes === undefined || bytes.length < 28) return { error: 'invalid ciphertext: could not decode base64' };
  const context = item.context === undefined ? undefined : decodeBase64(item.context);
  if (item.context !== undefined && context === undefined) return { error: 'failed to base64-decode context' };
  const key = keyFor(state, version, context);
  if (typeof key === 'string') return { error: key };
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    const plaintext = Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]);
    return { plaintext: plaintext.toString('base64') };
  } catch {
    return { error: 'cipher: message authentication failed' };
  }
}

function rewrapItem(state: KeyState, item: Record<string, unknown>): ItemResult {
  const opened = decryptItem(state, item);
  if (opened.error !== undefined) return opened;
  return encryptItem(state, { plaintext: opened.plaintext, context: item.context });
}

const OPERATIONS = { encrypt: encryptItem, decrypt: decryptItem, rewrap: rewrapItem } as const;

export function startVaultTransitSimulator(options: TransitSimulatorOptions): TransitSimulator {
  const mount = options.mount ?? 'transit';
  const calls: Record<string, number> = {};
  const bodies: string[] = [];
  const count = (operation: string, by = 1): void => {
    calls[operation] = (calls[operation] ?? 0) + by;
  };
  const keys = new Map<string, KeyState>(
    Object.entries(options.keys).map(([name, key]) => [
      name,
      {
        derived: key.derived ?? false,
        type: key.type ?? 'aes256-gcm96',
        versions: Array.from({ length: key.versions ?? 1 }, () => randomBytes(32)),
        minDecryptionVersion: key.minDecryptionVersion ?? 1,
      },
    ]),
  );
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      const url = new URL(request.url);
      const prefix = `/v1/${mount}/`;
      if (!url.pathname.startsWith(prefix) || (options.namespace !== undefined && request.headers.get('x-vault-namespace') !== options.namespace)) {
        return errors(404, `no handler for route "${url.pathname.slice(4)}". route entry not found.`);
      }
      const token = request.headers.get('x-vault-token');
      if (token === null || token !== options.token) return errors(403, 'permission denied');
      const [operation, name, action] = url.pathname.slice(prefix.length).split('/');
      const state = name === undefined ? undefined : keys.get(decodeURIComponent(name));
      if (operation === 'keys' && request.method === 'GET' && action === undefined) {
        count('read');
        if (state === undefined) return errors(404);
        return Response.json({
          data: {
            name,
            type: state.type,
            derived: state.derived,
            latest_version: state.versions.length,
            min_decryption_version: state.minDecryptionVersion,
            min_encryption_version: 0,
            supports_encryption: true,
            supports_decryption: true,
            supports_derivation: true,
            keys: Object.fromEntries(state.versions.map((_, index) => [String(index + 1), 1_700_000_000 + index])),
          },
        });
      }
      if (operation === 'keys' && request.method === 'POST' && action === 'rotate') {
        count('rotate');
        if (state === undefined) return errors(400, 'key not found');
        state.versions.push(randomBytes(32));
        return Response.json({ data: { latest_version: state.versions.length } });
      }
      if (request.method !== 'POST' || !(operation === 'encrypt' || operation === 'decrypt' || operation === 'rewrap') || action !== undefined) {
        return errors(405, 'unsupported operation');
      }
      const text = await request.text();
      bodies.push(text);
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return errors(400, 'failed to parse JSON input');
      }
      if (state === undefined) return errors(400, operation === 'encrypt' ? 'encryption key not found' : 'encryption key not found');
      const handle = OPERATIONS[operation];
      const batch = body.batch_input;
      if (batch === undefined) {
        count(operation);
        const result = handle(state, body);
        if (result.error !== undefined) return errors(400, result.error);
        return Response.json({ data: result });
      }
      if (!Array.isArray(batch) || batch.length === 0) return errors(400, 'missing batch input to process');
      count(operation, batch.length);
      const withContext = batch.filter((item) => (item as Record<string, unknown>).context !== undefined).length;
      if (withContext !== 0 && withContext !== batch.length) return errors(400, 'context should be set either in all the request blocks or in none');
      const results = batch.map((item) => handle(state, item as Record<string, unknown>));
      const failed = results.filter((result) => result.error !== undefined).length;
      const partial = Number(body.partial_failure_response_code ?? 400);
      const status = failed === 0 ? 200 : failed === results.length ? 400 : partial;
      return Response.json({ data: { batch_results: results } }, { status });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    calls,
    bodies,
    rotate(name) {
      const state = keys.get(name);
      if (state === undefined) throw new Error(`no key ${name}`);
      state.versions.push(randomBytes(32));
      return state.versions.length;
    },
    setMinDecryptionVersion(name, version) {
      const state = keys.get(name);
      if (state !== undefined) state.minDecryptionVersion = version;
    },
    stop: async () => {
      server.stop(true);
    },
  };
}
