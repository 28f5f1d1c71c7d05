// Allow-lists of exact names and `*` globs (`*` matches any run of characters, the empty one too),
// compiled once into a set and one anchored regular expression. For names (models), not URLs: a `*`
// here runs across any character, so hosted-tools matches MCP server URLs part by part instead.

export interface Allowlist {
  test(name: string): boolean;
}

const REGEX_SPECIALS = /[.*+?^${}()|[\]\\/-]/g;

/** The regular expression a glob means: every character literal but `*`. */
export function globSource(glob: string): string {
  return glob
    .split('*')
    .map((part) => part.replace(REGEX_SPECIALS, '\\$&'))
    .join('[\\s\\S]*');
}

export function compileAllowlist(entries: readonly string[]): Allowlist {
  const exact = new Set<string>();
  const globs: string[] = [];
  for (const entry of entries) {
    if (entry.includes('*')) globs.push(globSource(entry));
    else exact.add(entry);
  }
  const pattern = globs.length === 0 ? undefined : new RegExp(`^(?:${globs.join('|')})$`);
  return { test: (name) => exact.has(name) || (pattern !== undefined && pattern.test(name)) };
}
