// A ciphertext sealed under a master key version this instance does not have: during a rolling restart
// onto a new version, an instance already restarted seals new secrets under it, and the instances not
// yet restarted cannot open them. That is not a broken key nor a wrong master key (which /ready must
// report), only a secret this instance cannot use until it restarts with the version (QA15 cluster #10).

import type { CryptoBackend } from '../spec/crypto-backend.ts';

export interface AbsentKeyVersion {
  /** `master key v2 (local), a master key version this instance does not have (it has v1)` */
  description: string;
}

/**
 * When a ciphertext that did not open names a key version its backend does not have here, how to say
 * so; undefined for any other failure (the version is configured, or the ciphertext names none).
 */
export function absentKeyVersion(backendName: string, backend: CryptoBackend, ciphertext: string): AbsentKeyVersion | undefined {
  const version = backend.keyVersionOf?.(ciphertext);
  if (version === undefined) return undefined;
  const versions = backend.keyVersions?.() ?? [backend.currentKeyVersion()];
  if (versions.includes(version)) return undefined;
  const held = versions.length === 0 ? 'none' : versions.map((entry) => `v${entry}`).join(', ');
  return { description: `master key v${version} (${backendName}), a master key version this instance does not have (it has ${held})` };
}

/** Where the answers point an operator. */
export const ROLLING_RESTART_DOC = 'docs/key-lifecycle.md, "Rotating the master key"';
