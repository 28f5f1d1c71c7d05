// The one reader of an operator's settings: the variables of the environment and of the KEYWAY_CONFIG
// file (whose JSON values reach the core and the plugins as text: `false` as "false", 10 as "10").
// Every on/off switch, number, choice, address and operator secret goes through these, so each takes
// the same spellings everywhere, and a value none of them can read stops the start with one line naming
// the variable (`keyway: cannot start: KEYWAY_TOKENIZERS must be on or off; got "maybe".`) instead of quietly
// leaving the default in force: a switch turned "false" that stayed on kept storing prompts (QA17).
// Folders and files a plugin reads later (a key directory, a Vault token file) are looked at here too,
// at start: before QA18 a typo in one showed up only at the first request that needed it.

import { accessSync, constants, readFileSync, statSync } from 'node:fs';

/**
 * A setting that cannot be used. The start stops with its message alone, which names the variable
 * (plugins/main.ts prints it; core/registry.ts passes it through a plugin's setup unwrapped).
 */
export class SettingError extends Error {
  override name = 'SettingError';
}

/** Unset: absent, or empty (an empty variable is how a shell or a compose file leaves one unset). */
function unset(value: string | undefined): value is undefined {
  return value === undefined || value.trim() === '';
}

const ON = /^(on|true|yes|1)$/i;
const OFF = /^(off|false|no|0)$/i;

/** A switch: `on`, `true`, `yes`, `1` or `off`, `false`, `no`, `0`, in any case; anything else is refused. */
export function onOffSetting(name: string, value: string | undefined, fallback: boolean): boolean {
  if (unset(value)) return fallback;
  const text = value.trim();
  if (ON.test(text)) return true;
  if (OFF.test(text)) return false;
  throw new SettingError(`${name} must be on or off; got ${JSON.stringify(value)}.`);
}

/** Digits only: Number() also reads `1e3`, `42630.0`, `+5` and `0x10`, which the docs do not call integers (QA19 ops L3). */
const DIGITS = /^[0-9]+$/;

/** A whole number from `minimum` to `maximum`: `abc`, `1.5`, `1e3`, `-1` or one out of range is refused, never replaced. */
export function integerSetting(name: string, value: string | undefined, fallback: number, minimum: number, maximum: number): number {
  if (unset(value)) return fallback;
  const text = value.trim();
  const parsed = DIGITS.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(parsed) || parsed < minimum || parsed > maximum) {
    throw new SettingError(`${name} must be an integer between ${minimum} and ${maximum}; got ${JSON.stringify(value)}.`);
  }
  return parsed;
}

export interface NumberRange {
  minimum: number;
  maximum: number;
  /** The minimum itself is refused: a duration that must be more than 0. */
  aboveMinimum?: boolean;
}

/** A number, fractions allowed (`0.5` hours), within `range`. */
export function numberSetting(name: string, value: string | undefined, fallback: number, range: NumberRange): number {
  if (unset(value)) return fallback;
  const parsed = Number(value.trim());
  const low = range.aboveMinimum === true ? parsed > range.minimum : parsed >= range.minimum;
  if (!Number.isFinite(parsed) || !low || parsed > range.maximum) {
    const span = range.aboveMinimum === true ? `greater than ${range.minimum} and at most ${range.maximum}` : `from ${range.minimum} to ${range.maximum}`;
    throw new SettingError(`${name} must be a number ${span}; got ${JSON.stringify(value)}.`);
  }
  return parsed;
}

/** One of `choices`, in any case. */
export function choiceSetting<Choice extends string>(name: string, value: string | undefined, choices: readonly Choice[], fallback: Choice): Choice {
  if (unset(value)) return fallback;
  const lower = value.trim().toLowerCase();
  if ((choices as readonly string[]).includes(lower)) return lower as Choice;
  throw new SettingError(`${name} must be one of ${choices.join(', ')}; got ${JSON.stringify(value)}.`);
}

/**
 * An address Keyway calls (`KEYWAY_OPENAI_BASE_URL`): a URL with one of `protocols` and a host, or
 * undefined when unset. The value is never echoed: a URL can carry a password. `form` is how to write
 * one, for the message.
 */
export function urlSetting(
  name: string,
  value: string | undefined,
  protocols: readonly string[] = ['http:', 'https:'],
  form = `${protocols.at(-1) ?? 'https:'}//host[:port][/path]`,
): string | undefined {
  if (unset(value)) return undefined;
  const text = value.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SettingError(`${name} is not a URL; write it as ${form}.`);
  }
  if (!protocols.includes(url.protocol)) {
    const accepted = protocols.map((protocol) => `${protocol}//`).join(' or ');
    throw new SettingError(`${name} must start with ${accepted}; got the scheme ${url.protocol}.`);
  }
  if (url.hostname === '') throw new SettingError(`${name} names no host; write it as ${form}.`);
  return text;
}

/** The shortest operator secret taken: `openssl rand -base64 32` writes 44 characters. */
export const MINIMUM_SECRET_CHARACTERS = 32;
const MINIMUM_DISTINCT_CHARACTERS = 10;
const SECRET_HINT = 'Generate one with: openssl rand -base64 32';

function repeatsPattern(text: string): boolean {
  for (let period = 1; period <= text.length / 2; period += 1) {
    if (text.length % period === 0 && text.slice(0, period).repeat(text.length / period) === text) return true;
  }
  return false;
}

/** Why `secret` is too weak to guard the gateway, or undefined; never quotes it. */
export function weakSecretReason(secret: string): string | undefined {
  if (!/^[\x21-\x7e]+$/.test(secret)) return 'it holds a space or a character outside printable ASCII, which no Authorization header can carry';
  if (secret.length < MINIMUM_SECRET_CHARACTERS) return `it is shorter than ${MINIMUM_SECRET_CHARACTERS} characters`;
  if (new Set(secret).size < MINIMUM_DISTINCT_CHARACTERS) return `it has fewer than ${MINIMUM_DISTINCT_CHARACTERS} distinct characters`;
  if (repeatsPattern(secret)) return 'it repeats a shorter pattern';
  return undefined;
}

/**
 * A bearer secret the operator sets (`KEYWAY_ADMIN_KEY`, `KEYWAY_METRICS_TOKEN`): unset is undefined; a
 * guessable one (`x`, a word, a short pattern) stops the start, since it would open the gateway to
 * anyone who tries it. The message never holds the value.
 */
export function secretSetting(name: string, value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  const weakness = weakSecretReason(value);
  if (weakness !== undefined) throw new SettingError(`${name} is too weak: ${weakness}. ${SECRET_HINT}`);
  return value;
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'error';
}

/**
 * A folder Keyway reads from later (`KEYWAY_KEY_SOURCE_FILE_DIR`): it must exist, be a folder, and be
 * listable and readable by this process now. Unset is undefined. The path is the operator's, so it is named.
 */
export function readableFolderSetting(name: string, value: string | undefined): string | undefined {
  if (unset(value)) return undefined;
  let isFolder: boolean;
  try {
    isFolder = statSync(value).isDirectory();
  } catch (error) {
    throw new SettingError(`${name} names ${value}, which ${errorCode(error) === 'ENOENT' ? 'does not exist' : `cannot be reached (${errorCode(error)})`}.`);
  }
  if (!isFolder) throw new SettingError(`${name} names ${value}, which is not a folder.`);
  try {
    accessSync(value, constants.R_OK | constants.X_OK);
  } catch (error) {
    throw new SettingError(`${name} names ${value}, which Keyway cannot read (${errorCode(error)}).`);
  }
  return value;
}

/**
 * A file whose content Keyway reads later, and again at each use (`KEYWAY_VAULT_TOKEN_FILE`, which an
 * agent renews): it must be readable and not empty now. Unset is undefined. The content is never echoed.
 */
export function readableFileSetting(name: string, value: string | undefined): string | undefined {
  if (unset(value)) return undefined;
  let text: string;
  try {
    text = readFileSync(value, 'utf8');
  } catch (error) {
    const code = errorCode(error);
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a folder, not a file' : `cannot be read (${code})`;
    throw new SettingError(`${name} names ${value}, which ${why}.`);
  }
  if (text.trim() === '') throw new SettingError(`${name} names ${value}, which is empty.`);
  return value;
}
