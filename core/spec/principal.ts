// Who is calling: the principal a gateway key stands for.

export type PrincipalRole = 'operator' | 'admin' | 'developer' | 'viewer';

export interface Principal {
  /** Public id of the gateway key that authenticated the request. */
  keyId: string;
  role: PrincipalRole;
  /** The account the request acts on; the operator acts on `default`. */
  accountId: string;
  teamId: string | undefined;
  /** Whether the key may spend BYOK provider keys (members may be read-only). */
  byokAccess: boolean;
  /** The key's environment (`production`, `staging`…): it uses only provider keys of the same one. */
  environment: string | undefined;
  /** The key's own governance settings (`allowed_ips`, `requests_per_minute`, `tokens_per_minute`…). */
  settings: Readonly<Record<string, unknown>>;
}

/** The account every install starts with: the operator acts on it, and single-company installs need no other. */
export const DEFAULT_ACCOUNT_ID = 'default';

/**
 * The id of every account `POST /v1/accounts` creates: `acc_` and 20 letters or digits. Key sources
 * that give each account a namespace named by its id (the `file` source's folders, the `env` source's
 * variable names) keep names of this shape for those accounts alone.
 */
export const CREATED_ACCOUNT_ID = /^acc_[A-Za-z0-9]{20}$/;
