// Names in a plugin's `plugins.<name>` section that its configuration schema does not have. TypeBox
// objects take any other property unless told not to, so `plugins.rotation.intervalMS` used to pass the
// check and leave the default in force without a word (QA19 ops M1), unlike a misspelt top-level name
// or variable, which stops the start.

import { closestNames } from './closest-names.ts';

interface ObjectSchema {
  type: 'object';
  properties: Record<string, unknown>;
  additionalProperties?: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * An object schema whose names are all listed. One that says what else it takes (`additionalProperties`
 * true or a schema) or names its keys by pattern (`Type.Record`) chooses its own names: left alone.
 */
function listsEveryName(schema: unknown): schema is ObjectSchema {
  if (!isRecord(schema) || schema.type !== 'object' || !isRecord(schema.properties)) return false;
  if ('patternProperties' in schema) return false;
  return schema.additionalProperties === undefined || schema.additionalProperties === false;
}

/** The first unknown name in `value`, as its path below the section and the names known at its level. */
function firstUnknown(schema: unknown, value: unknown, path: string[]): { path: string[]; known: string[] } | undefined {
  if (!listsEveryName(schema) || !isRecord(value)) return undefined;
  const known = Object.keys(schema.properties);
  for (const [name, inner] of Object.entries(value)) {
    if (!Object.hasOwn(schema.properties, name)) return { path: [...path, name], known };
    const found = firstUnknown(schema.properties[name], inner, [...path, name]);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Why the section cannot be taken because of a name its schema does not have, or undefined: `unknown
 * setting plugins["rotation"].intervalMS. Did you mean 'intervalMs'?`. The name is cut at 100
 * characters (a file's key could be anything).
 */
export function unknownPluginSetting(plugin: string, schema: unknown, section: unknown): string | undefined {
  const found = firstUnknown(schema, section, []);
  if (found === undefined) return undefined;
  const name = (found.path.at(-1) as string).slice(0, 100);
  const place = `plugins[${JSON.stringify(plugin)}].${[...found.path.slice(0, -1), name].join('.')}`;
  const [nearest] = closestNames(
    name.toLowerCase(),
    found.known.map((known) => known.toLowerCase()),
    1,
  );
  const match = found.known.find((known) => known.toLowerCase() === nearest);
  const hint = match === undefined ? ` The settings it takes: ${found.known.join(', ') || 'none'}.` : ` Did you mean '${match}'?`;
  return `unknown setting ${place}.${hint} A misspelt setting would leave its default in force.`;
}
