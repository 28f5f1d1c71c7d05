// A small client for HashiCorp Vault's Transit secrets engine: read a key's versions, encrypt,
// decrypt and rewrap (one item, or a batch), with X-Vault-Token and the optional X-Vault-Namespace.
// Errors name the call and Vault's own words; never a token, a plaintext or a data key.

export interface TransitClientOptions {
  address: string;
  /** Read for every call, so a token file renewed by Vault Agent is picked up. */
  token: () => string;
  namespace: string | undefined;
  mount: string;
  key: string;
  timeoutMs: number;
  fetch: typeof fetch;
}

export interface TransitKeyInfo {
  latestVersion: number;
  minDecryptionVersion: number;
  minEncryptionVersion: number;
  derived: boolean;
  type: string;
}

export interface TransitItem {
  /** Base64, as Vault takes it. */
  plaintext?: string;
  ciphertext?: string;
  /** Base64 derivation context, for derived keys. */
  context?: string;
  key_version?: number;
}

export type TransitResult = { ciphertext?: string; plaintext?: string; key_version?: number; error?: string };

export class TransitError extends Error {
  override name = 'TransitError';
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
  }
}

/** Vault's `{"errors": [...]}`, bounded; anything else is summarized by status alone. */
function vaultErrors(body: unknown): string {
  const errors = (body as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return 'no error text';
  return errors
    .map((error) => String(error))
    .join('; ')
    .replace(/\s+/g, ' ')
    .slice(0, 300);
}

export class TransitClient {
  private readonly base: string;

  constructor(private readonly options: TransitClientOptions) {
    this.base = `${options.address.replace(/\/+$/, '')}/v1/${options.mount.replace(/^\/+|\/+$/g, '')}`;
  }

  get keyName(): string {
    return this.options.key;
  }

  private async call(method: 'GET' | 'POST', path: string, body?: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = { 'x-vault-token': this.options.token() };
    if (this.options.namespace !== undefined) headers['x-vault-namespace'] = this.options.namespace;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.options.fetch(`${this.base}/${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      const reason = error instanceof Error && error.name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : 'unreachable';
      throw new TransitError(`Vault Transit ${path.split('/')[0]} at ${this.options.address}: ${reason}`, undefined);
    }
    let parsed: unknown;
    try {
      parsed = await response.json();
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed };
  }

  private failure(operation: string, status: number, body: unknown): TransitError {
    const hint =
      status === 403
        ? ' (check KEYWAY_VAULT_TOKEN and that its policy allows this path)'
        : status === 404
          ? ` (is the Transit engine mounted at '${this.options.mount}'${this.options.namespace === undefined ? '' : ` in namespace '${this.options.namespace}'`}?)`
          : '';
    return new TransitError(`Vault Transit ${operation} of key '${this.options.key}' failed with ${status}: ${vaultErrors(body)}${hint}`, status);
  }

  async readKey(): Promise<TransitKeyInfo> {
    const { status, body } = await this.call('GET', `keys/${encodeURIComponent(this.options.key)}`);
    if (status === 404 && vaultErrors(body) === 'no error text') {
      throw new TransitError(
        `Vault Transit has no key '${this.options.key}' at mount '${this.options.mount}'. Create it: vault write -f ${this.options.mount}/keys/${this.options.key}`,
        404,
      );
    }
    if (status !== 200) throw this.failure('key read', status, body);
    const data = (body as { data?: Record<string, unknown> }).data ?? {};
    const latest = Number(data.latest_version);
    if (!Number.isSafeInteger(latest) || latest < 1)
      throw new TransitError(`Vault Transit key '${this.options.key}' answered without a latest_version`, status);
    return {
      latestVersion: latest,
      minDecryptionVersion: Math.max(1, Number(data.min_decryption_version ?? 1) || 1),
      minEncryptionVersion: Number(data.min_encryption_version ?? 0) || 0,
      derived: data.derived === true,
      type: String(data.type ?? 'unknown'),
    };
  }

  /** One item: throws on failure. */
  async one(operation: 'encrypt' | 'decrypt' | 'rewrap', item: TransitItem): Promise<TransitResult> {
    const { status, body } = await this.call('POST', `${operation}/${encodeURIComponent(this.options.key)}`, { ...item });
    if (status !== 200) throw this.failure(operation, status, body);
    return ((body as { data?: TransitResult }).data ?? {}) as TransitResult;
  }

  /** Many items in one call; per-item failures come back as `error`, a failed call throws. */
  async batch(operation: 'encrypt' | 'decrypt' | 'rewrap', items: readonly TransitItem[]): Promise<TransitResult[]> {
    if (items.length === 0) return [];
    const { status, body } = await this.call('POST', `${operation}/${encodeURIComponent(this.options.key)}`, {
      batch_input: items,
      // Per-item failures answer 200 with their error, so the rest of the batch is not lost.
      partial_failure_response_code: 200,
    });
    const results = (body as { data?: { batch_results?: unknown } } | undefined)?.data?.batch_results;
    // Every item failed: Vault still answers 400, with the per-item errors.
    if (Array.isArray(results) && results.length === items.length && (status === 200 || status === 400)) return results as TransitResult[];
    throw this.failure(`batch ${operation}`, status, body);
  }
}
