// A team's allowed remote MCP servers: URL patterns matched part by part (scheme, host, port, path),
// never as one string. A string glob lets `https://*.mycorp.com/*` admit
// `https://evil.com/.mycorp.com/`, its `*` running from the host into the path.
//
// - `*` in the host stands for one or more whole DNS labels (`*.mycorp.com`), or for part of one label
//   (`mcp-*.mycorp.com`); it never crosses into the port, the user info or the path.
// - `*` in the path (with the query and fragment after it) matches any run of characters there.
// - The port must be the pattern's (the scheme's default when it names none; `:*` allows any).
// - The entry `*` alone allows any server.
// A requested URL is refused when it does not parse, carries user info (`user@host`), or is written in
// a way URL parsers disagree on (whitespace, control characters, `\`, a host that parsing rewrites, a
// path with `.`/`..` segments or an escaped `.`, `/` or `\`), so the host and path checked here are
// the ones the provider's HTTP client and the server read.

import { globSource } from './glob.ts';

export interface ServerAllowlist {
  test(url: string): boolean;
}

interface ServerPattern {
  scheme: string;
  host: RegExp;
  /** '' for the scheme's default port, '*' for any. */
  port: string;
  /** Over the path, query and fragment. */
  path: RegExp;
}

/** The URL's parts as RFC 3986 splits them: what a parser other than WHATWG's would see. */
const RAW_URL = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([\s\S]*)$/;

/** Characters on which URL parsers disagree (WHATWG drops tabs and newlines, reads `\` as `/`…). */
const AMBIGUOUS_CHARACTERS = /[\u0000-\u0020\u007f\\]/;

/** Dot segments and escaped dots and slashes: some servers and clients resolve them, others do not. */
const AMBIGUOUS_PATH = /(?:^|\/)\.{1,2}(?:\/|$)|%2e|%2f|%5c/i;

const HOST_PATTERN_CHARACTERS = /^[a-z0-9_*.-]+$|^\[[0-9a-f:.]+\]$/;

const REGEX_SPECIALS = /[.*+?^${}()|[\]\\/-]/g;

/** One host label of a pattern: `*` is one or more labels, a `*` inside a label part of that label. */
function labelSource(label: string): string {
  if (label === '*') return '[^.]+(?:\\.[^.]+)*';
  return label
    .split('*')
    .map((part) => part.replace(REGEX_SPECIALS, '\\$&'))
    .join('[^.]*');
}

/** The host and the port text of an authority (`[v6]:port` or `host:port`). */
function splitAuthority(authority: string): { host: string; port: string } {
  const portAt = authority.startsWith('[') ? authority.indexOf(']:') + 1 : authority.lastIndexOf(':');
  if (portAt <= 0) return { host: authority, port: '' };
  return { host: authority.slice(0, portAt), port: authority.slice(portAt + 1) };
}

/** The port as URL parsing writes it: '' for the scheme's default; undefined when it is no port. */
function normalizedPort(scheme: string, port: string): string | undefined {
  if (port === '' || port === '*') return port;
  if (!/^\d{1,5}$/.test(port)) return undefined;
  try {
    return new URL(`${scheme}://placeholder.invalid:${port}/`).port;
  } catch {
    return undefined;
  }
}

/** The path, query and fragment as URL parsing writes them, so a pattern and a URL compare alike. */
function normalizedPath(scheme: string, rest: string): string | undefined {
  try {
    const url = new URL(`${scheme}://placeholder.invalid${rest}`);
    return url.pathname + url.search + url.hash;
  } catch {
    return undefined;
  }
}

/** A pattern, or undefined for an entry that is no URL pattern (it matches nothing). */
function compilePattern(entry: string): ServerPattern | undefined {
  if (AMBIGUOUS_CHARACTERS.test(entry)) return undefined;
  const [, rawScheme, authority, rest] = RAW_URL.exec(entry) ?? [];
  if (rawScheme === undefined || authority === undefined || rest === undefined || authority.includes('@')) return undefined;
  const scheme = rawScheme.toLowerCase();
  const { host, port } = splitAuthority(authority.toLowerCase());
  const normalized = { port: normalizedPort(scheme, port), path: normalizedPath(scheme, rest) };
  if (!HOST_PATTERN_CHARACTERS.test(host) || normalized.port === undefined || normalized.path === undefined) return undefined;
  if (host.split('.').some((label) => label === '')) return undefined;
  return {
    scheme,
    host: new RegExp(`^${host.split('.').map(labelSource).join('\\.')}$`),
    port: normalized.port,
    path: new RegExp(`^${globSource(normalized.path)}$`),
  };
}

/** The URL a provider would connect to, or undefined when it is refused whatever the patterns say. */
function parseServerUrl(text: string): URL | undefined {
  if (AMBIGUOUS_CHARACTERS.test(text)) return undefined;
  const [, , authority, rest] = RAW_URL.exec(text) ?? [];
  if (authority === undefined || rest === undefined || authority.includes('@')) return undefined;
  if (AMBIGUOUS_PATH.test(rest.split(/[?#]/, 1)[0] ?? '')) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  // Percent-escapes, IPv4 shorthands and non-ASCII names are rewritten by parsing: the host as written
  // is then not the host connected to, and another parser may read it differently again.
  if (splitAuthority(authority).host.toLowerCase() !== url.hostname || url.hostname === '') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  return url;
}

function matches(pattern: ServerPattern, url: URL): boolean {
  return (
    url.protocol === `${pattern.scheme}:` &&
    pattern.host.test(url.hostname) &&
    (pattern.port === '*' || pattern.port === url.port) &&
    pattern.path.test(url.pathname + url.search + url.hash)
  );
}

/**
 * Whether an `mcp_servers` entry is `*` or a pattern this file can match with: what the teams plugin
 * takes when a team is written, so a typo is refused there instead of matching nothing.
 */
export function isServerPattern(entry: string): boolean {
  return entry === '*' || compilePattern(entry) !== undefined;
}

export function compileServerAllowlist(entries: readonly string[]): ServerAllowlist {
  const anyServer = entries.includes('*');
  const patterns = entries.map(compilePattern).filter((pattern): pattern is ServerPattern => pattern !== undefined);
  return {
    test(text) {
      const url = parseServerUrl(text);
      if (url === undefined) return false;
      return anyServer || patterns.some((pattern) => matches(pattern, url));
    },
  };
}
