// The warning a team's write gets when its provider list shuts out providers the team could otherwise
// use. A team that lists providers may use only those (docs/policies.md, provider-access), so a routine
// "cap Anthropic at $1" (`{"providers": {"anthropic": {"max_cost_per_day": 1}}}` on a team that listed
// none) cut off its OpenAI and Google traffic without a word (QA14). The write stands (the rule is
// documented and relied on); the answer says what it shut out and how to allow a provider again.

import type { TeamPermissions } from './types.ts';

/** The providers a team may name besides its list: those with keys of the account, and of the platform. */
export interface KeyedProviders {
  account: ReadonlySet<string>;
  platform: ReadonlySet<string>;
}

/** Whether a provider list lets the team use `provider`: no list allows every provider, a list only its enabled entries. */
function allows(permissions: TeamPermissions, provider: string): boolean {
  const listed = permissions.providers ?? {};
  if (Object.keys(listed).length === 0) return true;
  const entry = listed[provider];
  return entry !== undefined && entry.enabled !== false;
}

/** `openai`, `openai and google`, `openai, google and cohere`. */
function nameList(names: readonly string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/**
 * Providers the list now shuts out that matter: each one the account has keys for, and (on a change,
 * `before` set) each one the team could use before, through the account's keys or the platform's.
 * A provider listed with `enabled: false` is turned off on purpose, and one no key serves is out of
 * reach either way: neither is named.
 */
export function excludedProviders(after: TeamPermissions, keyed: KeyedProviders, before?: TeamPermissions): { newly: string[]; still: string[] } {
  const listed = after.providers ?? {};
  const newly: string[] = [];
  const still: string[] = [];
  if (Object.keys(listed).length === 0) return { newly, still };
  const reachable = [...new Set([...keyed.account, ...keyed.platform])].sort();
  for (const provider of reachable) {
    if (provider in listed) continue;
    const allowedBefore = before !== undefined && allows(before, provider);
    if (allowedBefore) newly.push(provider);
    else if (keyed.account.has(provider)) still.push(provider);
  }
  return { newly, still };
}

/** The `warnings` entries of a team's answer (none when nothing that matters is shut out). */
export function providerListWarnings(after: TeamPermissions, keyed: KeyedProviders, before?: TeamPermissions): string[] {
  const { newly, still } = excludedProviders(after, keyed, before);
  if (newly.length === 0 && still.length === 0) return [];
  const enabled = Object.entries(after.providers ?? {})
    .filter(([, entry]) => entry.enabled !== false)
    .map(([provider]) => provider);
  const listing = enabled.length === 0 ? 'enables none of the providers it lists' : `lists only ${nameList(enabled)}`;
  const clauses: string[] = [];
  if (newly.length > 0) clauses.push(`this team can no longer use ${nameList(newly)}`);
  if (still.length > 0) clauses.push(`${clauses.length === 0 ? 'this team' : 'it'} cannot use ${nameList(still)}`);
  const withKeys = [...newly, ...still].filter((provider) => keyed.account.has(provider));
  const keys = withKeys.length === 0 ? '' : ` This account has keys for ${nameList(withKeys)}.`;
  const example = newly[0] ?? still[0];
  return [
    `byok_permissions.providers ${listing}, and a team that lists providers may use only those: ${clauses.join(', and ')}.${keys} ` +
      `To allow a provider, list it: "${example}": {} (an entry without rules allows all of its models, with no budget).`,
  ];
}
