// How many requests Bun's fetch may have in flight at once, sized for a gateway.
//
// Bun allows 256 simultaneous fetch requests per process by default and queues the rest behind them,
// whatever their destination: one account holding 256 slow streams would make every other account's
// call wait, time out, and count as its provider's failure. The limit is read from
// BUN_CONFIG_MAX_HTTP_REQUESTS once, when the process starts (setting it later changes nothing), so
// the entry point re-executes itself once with the variable set. Everything here is pure: the entry
// point passes in the process's facts and performs the execve. No imports: core/config.ts reads
// the effective limit from here.

export const BUN_FETCH_LIMIT_VARIABLE = 'BUN_CONFIG_MAX_HTTP_REQUESTS';
export const UPSTREAM_CONNECTIONS_VARIABLE = 'KEYWAY_MAX_UPSTREAM_CONNECTIONS';
/** Bun's own default, in force when BUN_CONFIG_MAX_HTTP_REQUESTS is not set. */
export const BUN_DEFAULT_FETCH_LIMIT = 256;
/** The largest value Bun accepts (docs: runtime/networking/fetch, "Simultaneous connection limit"). */
export const BUN_MAX_FETCH_LIMIT = 65_535;
/** Keyway's default: far above what one gateway process serves, far below the port range. */
export const DEFAULT_UPSTREAM_CONNECTIONS = 16_384;

export interface ProcessFacts {
  env: Readonly<Record<string, string | undefined>>;
  /** process.argv: [bun, script, ...args] from source; ["bun", "/$bunfs/root/<name>", ...args] in a compiled binary. */
  argv: readonly string[];
  /** Runtime flags given before the script (`bun --smol plugins/main.ts`); ignored in a compiled binary. */
  execArgv?: readonly string[];
  /** The Bun executable from source; the binary itself when compiled. */
  execPath: string;
  /** The soft limit on open files, when known (Linux: /proc/self/limits). */
  openFilesLimit?: number | undefined;
}

export interface Reexec {
  file: string;
  args: string[];
  env: Record<string, string>;
  /** The fetch limit the new process image will run with. */
  connections: number;
}

/** A compiled binary's script path lives in Bun's embedded file system. */
export function isCompiledBinary(argv: readonly string[]): boolean {
  return argv[1]?.startsWith('/$bunfs/') === true || argv[1]?.startsWith('B:/~BUN/') === true;
}

function positiveInteger(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed >= 1 ? parsed : undefined;
}

/**
 * The connections Keyway asks for: KEYWAY_MAX_UPSTREAM_CONNECTIONS when set, else 16384, or half the
 * open-files limit when that is lower (every proxied call holds a client socket and an upstream one).
 */
export function desiredUpstreamConnections(env: ProcessFacts['env'], openFilesLimit?: number): number {
  const configured = env[UPSTREAM_CONNECTIONS_VARIABLE];
  if (configured !== undefined && configured !== '') {
    const parsed = positiveInteger(configured);
    if (parsed === undefined || parsed > BUN_MAX_FETCH_LIMIT) {
      // The entry point prints a KEYWAY_ message as one line, like a ConfigError.
      throw new Error(`${UPSTREAM_CONNECTIONS_VARIABLE} must be an integer between 1 and ${BUN_MAX_FETCH_LIMIT}; got ${JSON.stringify(configured)}.`);
    }
    return parsed;
  }
  if (openFilesLimit !== undefined && Number.isFinite(openFilesLimit) && openFilesLimit > 0) {
    return Math.max(BUN_DEFAULT_FETCH_LIMIT, Math.min(DEFAULT_UPSTREAM_CONNECTIONS, Math.floor(openFilesLimit / 2)));
  }
  return DEFAULT_UPSTREAM_CONNECTIONS;
}

/** The limit this process's fetch runs with: what BUN_CONFIG_MAX_HTTP_REQUESTS said at start, else Bun's 256. */
export function effectiveFetchCapacity(env: ProcessFacts['env']): number {
  const parsed = positiveInteger(env[BUN_FETCH_LIMIT_VARIABLE]);
  return parsed === undefined || parsed > BUN_MAX_FETCH_LIMIT ? BUN_DEFAULT_FETCH_LIMIT : parsed;
}

/**
 * The execve that gives this process its connection limit, or undefined when none is needed: the
 * variable is already set (by the operator, or by the re-exec itself, so it happens at most once),
 * or the wanted limit is Bun's default anyway. Throws for a malformed override.
 */
export function fetchCapacityReexec(facts: ProcessFacts): Reexec | undefined {
  const connections = desiredUpstreamConnections(facts.env, facts.openFilesLimit);
  const current = facts.env[BUN_FETCH_LIMIT_VARIABLE];
  if (current !== undefined && current !== '') return undefined;
  if (connections === BUN_DEFAULT_FETCH_LIMIT) return undefined;
  const args = isCompiledBinary(facts.argv) ? [facts.execPath, ...facts.argv.slice(2)] : [facts.execPath, ...(facts.execArgv ?? []), ...facts.argv.slice(1)];
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(facts.env)) if (value !== undefined) env[name] = value;
  env[BUN_FETCH_LIMIT_VARIABLE] = String(connections);
  return { file: facts.execPath, args, env, connections };
}

/** The soft "Max open files" limit from /proc/self/limits text; undefined when absent or unlimited. */
export function parseOpenFilesLimit(limitsText: string): number | undefined {
  const match = /^Max open files\s+(\S+)/m.exec(limitsText);
  const parsed = match === null ? undefined : positiveInteger(match[1]);
  return parsed;
}
