// Which `KEYWAY_…` variables anyone reads: the core's own (CORE_VARIABLES) and those the loaded plugins
// declare (PluginDefinition.environment). Once the plugins have loaded, a name in the KEYWAY_CONFIG file
// that nobody declares stops the start with the nearest known name; one in the process environment is
// only reported, since shells carry stray variables. See docs/configuration.md, "Unknown settings".

import { closestNames } from './closest-names.ts';
import { ConfigError, CORE_VARIABLES, VARIABLE_NAME, type ConfigFileVariables } from './config.ts';
import type { Logger } from './logger.ts';
import type { LoadedPlugin } from './registry.ts';

/** Every declared name: exact names, prefixes (a declaration ending in `*`), and the plugins that declared nothing. */
export interface KnownVariables {
  names: ReadonlySet<string>;
  prefixes: readonly string[];
  /** Third-party plugins without a declaration: they may read any name. */
  undeclaring: readonly string[];
}

export interface VariableCheck {
  configFile: ConfigFileVariables | undefined;
  environment: Readonly<Record<string, string | undefined>>;
  plugins: readonly LoadedPlugin[];
  logger: Logger;
}

const BUILTIN_SOURCE = 'builtin';

export function knownVariables(plugins: readonly LoadedPlugin[]): KnownVariables {
  const declarations = [...CORE_VARIABLES, ...plugins.flatMap((plugin) => plugin.environment ?? [])];
  return {
    names: new Set(declarations.filter((name) => !name.endsWith('*'))),
    prefixes: declarations.filter((name) => name.endsWith('*')).map((name) => name.slice(0, -1)),
    undeclaring: plugins.filter((plugin) => plugin.environment === undefined && plugin.source !== BUILTIN_SOURCE).map((plugin) => plugin.name),
  };
}

export function isKnownVariable(name: string, known: KnownVariables): boolean {
  return known.names.has(name) || known.prefixes.some((prefix) => name.startsWith(prefix));
}

/** The declared name nearest to `name`, if any is near. */
export function closestVariable(name: string, known: KnownVariables): string | undefined {
  return closestNames(name, known.names, 1)[0];
}

function suggestion(name: string, known: KnownVariables): string {
  const nearest = closestVariable(name, known);
  return nearest === undefined ? '' : ` Did you mean '${nearest}'?`;
}

/**
 * A `KEYWAY_…` name in the KEYWAY_CONFIG file that nobody declares: refused, unless a third-party
 * plugin declares nothing (it may read that name), when it is only reported.
 */
export function refuseUnknownFileVariables(configFile: ConfigFileVariables, known: KnownVariables, logger: Logger): void {
  for (const name of configFile.variableNames) {
    if (isKnownVariable(name, known)) continue;
    const shown = name.slice(0, 100);
    if (known.undeclaring.length > 0) {
      logger.warn(
        { setting: shown, nearest: closestVariable(name, known), undeclaring: known.undeclaring },
        `the KEYWAY_CONFIG file sets '${shown}', which neither Keyway nor a plugin declares; plugins that declare no variables may read it`,
      );
      continue;
    }
    throw new ConfigError(
      `KEYWAY_CONFIG file ${configFile.path}: unknown setting '${shown}'.${suggestion(name, known)} No loaded plugin declares it; ` +
        'see docs/configuration.md for the variables Keyway and its plugins read.',
    );
  }
}

/** A `KEYWAY_…` variable of the process environment that nobody declares: one warning line each, never a refusal. */
export function warnUnknownEnvironmentVariables(
  environment: Readonly<Record<string, string | undefined>>,
  known: KnownVariables,
  logger: Logger,
  skip: readonly string[],
): void {
  for (const name of Object.keys(environment)) {
    if (!VARIABLE_NAME.test(name) || isKnownVariable(name, known) || skip.includes(name)) continue;
    const shown = name.slice(0, 100);
    logger.warn(
      { variable: shown, nearest: closestVariable(name, known) },
      `the environment variable '${shown}' is read by neither Keyway nor a loaded plugin: it has no effect.${suggestion(name, known)}`,
    );
  }
}

/**
 * Checks the file's and the environment's variable names against every declaration. Workers after the
 * first skip the environment's report: the primary's environment is theirs, and one line is enough.
 */
export function checkVariableNames(check: VariableCheck, reportEnvironment: boolean): void {
  const known = knownVariables(check.plugins);
  if (check.configFile !== undefined) refuseUnknownFileVariables(check.configFile, known, check.logger);
  if (reportEnvironment) warnUnknownEnvironmentVariables(check.environment, known, check.logger, check.configFile?.variableNames ?? []);
}
