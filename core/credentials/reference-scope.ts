// A provider key held as a reference its own account may not use (QA15 F1: the `file` and `env`
// sources answered any account's reference, so a tenant could register another's file or variable)
// does not resolve: the source refuses it at use, as it refuses a missing file, and the key's attempts
// fail like any unresolvable reference's. The start says why, once per key, so the operator can tell
// the account what to move and re-enter rather than find the failures one request at a time.

import type { Logger } from '../logger.ts';
import type { KeySource } from '../spec/key-source.ts';
import type { ConfigSnapshot } from './snapshot.ts';

/** Asks each loaded source, without reading anything, whether the key's account may use its reference. */
export function warnReferencesOutOfScope(snapshot: Pick<ConfigSnapshot, 'keysById'>, sources: ReadonlyMap<string, KeySource>, logger: Logger): number {
  let found = 0;
  for (const key of snapshot.keysById.values()) {
    const reference = key.keyReference;
    // A source that is not loaded fails at use with its own message.
    const source = reference === undefined ? undefined : sources.get(reference.source);
    if (reference === undefined || source === undefined) continue;
    let problem: string | undefined;
    try {
      problem = source.validate(reference, { accountId: key.accountId, provider: key.provider, keyId: key.id });
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
    }
    if (problem === undefined) continue;
    found++;
    const owner = key.accountId === null ? 'the platform' : `account ${key.accountId}`;
    logger.warn(
      { keyId: key.id, accountId: key.accountId, provider: key.provider, source: reference.source, locator: reference.locator, reason: problem },
      `provider key ${key.id} of ${owner} is held as a reference of key source '${reference.source}' outside what ${owner} may read (${problem}); it does not resolve (its requests fall back to other keys, as for any reference that fails). Put the key where ${owner} may read it, add it again with that reference, then delete ${key.id} (docs/key-lifecycle.md, "Key sources")`,
    );
  }
  return found;
}
