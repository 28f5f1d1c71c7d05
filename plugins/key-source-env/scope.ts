// Which variable names a reference may read, by the account of the key it belongs to (QA15 F1: any
// account admin could name another tenant's variable and be served on its key). The names are
// derived from the account id as it is, so there is nothing to declare and no two accounts share one:
//
// - an account created with POST /v1/accounts (`acc_…`): `<prefix><account id>_…`, e.g.
//   `KEYWAY_KEY_acc_4fQ…_OPENAI`;
// - the `default` account (a single-company install: `KEYWAY_KEY_OPENAI`): every other name under the
//   prefix, so the names a single-company install uses keep working;
// - the operator's platform keys: any name under the prefix; names `<prefix>PLATFORM_…` are theirs
//   alone (the default account is a tenant too: it must not register the platform's key as its own
//   and skip the platform fee, QA15 re-verification).
//
// A name outside the scope is answered as an unset one, before anything is read.

import { CREATED_ACCOUNT_ID, DEFAULT_ACCOUNT_ID } from '../../core/spec/plugin.ts';

export interface EnvScope {
  includes(name: string): boolean;
  notSet(name: string): string;
}

/** In any case: where the environment ignores case (Windows), `KEYWAY_KEY_ACC_…` reads the account's own. */
const ACCOUNT_ID = new RegExp(CREATED_ACCOUNT_ID.source, 'i');

/** The platform's own names, in any case for the same reason. */
const isPlatformName = (name: string, prefix: string): boolean => name.slice(prefix.length, prefix.length + 'PLATFORM_'.length).toUpperCase() === 'PLATFORM_';

/** The account id right after the prefix (ids hold no `_` past `acc_`), when the name is in an account's space. */
function accountOf(name: string, prefix: string): string | undefined {
  const rest = name.slice(prefix.length);
  const underscore = rest.indexOf('_', 'acc_'.length);
  const candidate = underscore === -1 ? rest : rest.slice(0, underscore);
  return ACCOUNT_ID.test(candidate) ? candidate : undefined;
}

export function envScopeOf(prefix: string, accountId: string | null): EnvScope {
  if (accountId === null)
    return { includes: () => true, notSet: (name) => `the environment variable ${name} is not set or empty (the platform reads ${prefix}…)` };
  if (accountId === DEFAULT_ACCOUNT_ID)
    return {
      includes: (name) => accountOf(name, prefix) === undefined && !isPlatformName(name, prefix),
      notSet: (name) =>
        `the environment variable ${name} is not set or empty among this account's (${prefix}… except other accounts' ${prefix}acc_…_… and the platform's ${prefix}PLATFORM_…)`,
    };
  const own = `${prefix}${accountId}_`;
  return {
    includes: (name) => name.startsWith(own) && name.length > own.length,
    notSet: (name) => `the environment variable ${name} is not set or empty among this account's (${own}…)`,
  };
}
