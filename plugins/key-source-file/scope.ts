// Which part of the key directory a reference may reach, by the account of the key it belongs to
// (QA15 F1: any account admin could name another tenant's file and be served on its key):
//
// - an account created with POST /v1/accounts (`acc_…`): its own folder, `<dir>/<account id>/…`;
// - the `default` account (a single-company install, where keys sit at the top of the directory):
//   everything outside account folders, so the layouts of a single-company install keep working;
// - the operator's platform keys: the whole directory, as the vault-kv source lets them read any path;
//   the folder `platform/` is theirs alone (the default account is a tenant too: it must not register
//   the platform's key as its own and skip the platform fee, QA15 re-verification).
//
// Checked twice: on the locator before anything is read, and on the real path once symbolic links are
// followed (a link in one part may not lead into another; Kubernetes' `..data` links stay inside). An
// answer outside the scope is the answer a missing file gets, so it says nothing of what exists there.

import { realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { CREATED_ACCOUNT_ID, DEFAULT_ACCOUNT_ID } from '../../core/spec/plugin.ts';

export type FileScope =
  | { kind: 'platform'; notFound(locator: string): string }
  | { kind: 'default'; notFound(locator: string): string }
  | { kind: 'account'; folder: string; notFound(locator: string): string };

/**
 * A name of an account id's shape, anywhere in a path, in any case: on a case-insensitive file system
 * (macOS) `ACC_…` is the account's folder under another spelling.
 */
const ACCOUNT_FOLDER = new RegExp(CREATED_ACCOUNT_ID.source, 'i');
const isAccountFolder = (name: string): boolean => ACCOUNT_FOLDER.test(name);
/** The platform's own folder, at the top of the directory, in any case. */
const PLATFORM_FOLDER = 'platform';
const isPlatformFolder = (parts: readonly string[]): boolean => parts.length > 1 && parts[0]?.toLowerCase() === PLATFORM_FOLDER;

export function scopeOf(accountId: string | null): FileScope {
  if (accountId === null) return { kind: 'platform', notFound: (locator) => `no file ${locator} in the key directory` };
  if (accountId === DEFAULT_ACCOUNT_ID)
    return {
      kind: 'default',
      notFound: (locator) => `no file ${locator} among this account's key files (the key directory outside the account folders acc_… and platform/)`,
    };
  return {
    kind: 'account',
    folder: accountId,
    notFound: (locator) => `no file ${locator} among this account's key files (${accountId}/… in the key directory)`,
  };
}

/** The locator (already checked: relative, no `..`, no empty part) names a path in the scope. */
export function lexicallyInScope(locator: string, scope: FileScope): boolean {
  const parts = locator.split(/[\\/]/);
  if (scope.kind === 'platform') return true;
  if (scope.kind === 'default') return !parts.some(isAccountFolder) && !isPlatformFolder(parts);
  return parts.length > 1 && parts[0] === scope.folder;
}

function within(base: string, path: string): boolean {
  const inside = relative(base, path);
  return inside !== '' && inside !== '..' && !inside.startsWith(`..${sep}`) && !isAbsolute(inside);
}

/** `inside`: the file's real path relative to the directory's real path. */
export async function inScope(root: string, inside: string, scope: FileScope): Promise<boolean> {
  if (scope.kind === 'platform') return true;
  if (scope.kind === 'default') {
    const parts = inside.split(sep);
    return !parts.some(isAccountFolder) && !isPlatformFolder(parts);
  }
  // The folder's own real path: a folder that is itself a link (a Kubernetes projected volume) counts as it.
  const folder = await realpath(join(root, scope.folder)).catch(() => undefined);
  return folder !== undefined && within(folder, join(root, inside));
}
