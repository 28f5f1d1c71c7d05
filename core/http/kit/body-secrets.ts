// Keys pasted into the wrong field of a management body: a gateway key as a team's name, a provider
// key in a member's e-mail, a token in an alert's webhook URL. Stored, such a value comes back in every
// listing, analytics breakdown and export, so it is refused when the body is read. Every management
// route is held to this by the core (guard.ts, app.ts); each route names the few fields made to hold a
// key (`providers[].api_key`, `admin_key`), and every other string and field name is checked: for a
// key's shape, for the keys in play, and for the body's own keys. A key of no known shape (Cohere,
// vLLM, Ollama) is not yet in play while the body that brings it is read, so without the last check
// the same key pasted into `settings.default_model` was stored in plain text beside its ciphertext.

import { invalidField, type KeywayError } from '../../errors.ts';
import { looksLikeSecret } from '../../credentials/secret-shapes.ts';

/**
 * The body fields a route takes a key in, as paths with `[]` for any array index: `admin_key`,
 * `providers[].api_key`. A listed field's whole value is left alone.
 */
export type SecretFields = readonly string[];

const heldRequests = new WeakMap<Request, SecretFields>();

/** Called by the core once a management call is authenticated: its body will be checked when read. */
export function holdBodyToSecretFields(request: Request, secretFields: SecretFields = []): void {
  heldRequests.set(request, secretFields);
}

/** Refuses the body of a held request when a field other than its secret fields holds a key. */
export function refuseMisplacedSecretsOf(request: Request, body: unknown): void {
  const secretFields = heldRequests.get(request);
  if (secretFields !== undefined) refuseMisplacedSecrets(body, secretFields);
}

/**
 * A key of the body shorter than this is not looked for in its other fields: too likely to occur in
 * ordinary text (an Ollama server's `ollama`). The same floor as the keys in play (secret-values.ts).
 */
const SHORTEST_OWN_KEY = 8;

/**
 * The most keys of a body compared with its other strings, so a huge body costs no quadratic scan. No
 * route takes more keys in one body (`providers` holds at most 100), and its schema refuses a body with
 * more once this check has passed.
 */
const MAX_OWN_KEYS = 256;

/** A key the body itself carries in one of its secret fields, and where (`providers[0].api_key`). */
interface OwnKey {
  param: string;
  value: string;
}

/**
 * Throws 400 `invalid_field` naming the first field (or, for a key used as a field name, the object
 * holding it) whose text holds a key, by shape, by value, or because it holds a key the same body
 * sends in one of its secret fields; never the value itself.
 */
export function refuseMisplacedSecrets(body: unknown, secretFields: SecretFields): void {
  const ownKeys: OwnKey[] = [];
  if (secretFields.length > 0) collectOwnKeys(body, '', '', secretFields, ownKeys);
  visit(body, '', '', secretFields, ownKeys);
}

function collectOwnKeys(value: unknown, param: string, path: string, secretFields: SecretFields, into: OwnKey[]): void {
  if (into.length >= MAX_OWN_KEYS) return;
  if (typeof value === 'string') {
    if (secretFields.includes(path) && value.length >= SHORTEST_OWN_KEY) into.push({ param, value });
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) collectOwnKeys(value[index], `${param}[${index}]`, `${path}[]`, secretFields, into);
    return;
  }
  for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
    collectOwnKeys(item, param === '' ? name : `${param}.${name}`, path === '' ? name : `${path}.${name}`, secretFields, into);
  }
}

function visit(value: unknown, param: string, path: string, secretFields: SecretFields, ownKeys: readonly OwnKey[]): void {
  if (value === null || (typeof value !== 'string' && typeof value !== 'object')) return;
  if (secretFields.includes(path)) return;
  if (typeof value === 'string') {
    if (looksLikeSecret(value)) throw refusal(param);
    const own = ownKeyIn(value, ownKeys);
    if (own !== undefined) throw ownKeyRefusal(param, own);
    return;
  }
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) visit(value[index], `${param}[${index}]`, `${path}[]`, secretFields, ownKeys);
    return;
  }
  for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
    if (looksLikeSecret(name)) throw refusal(param, 'a field name in it');
    const own = ownKeyIn(name, ownKeys);
    if (own !== undefined) throw ownKeyRefusal(param, own, 'a field name in it');
    visit(item, param === '' ? name : `${param}.${name}`, path === '' ? name : `${path}.${name}`, secretFields, ownKeys);
  }
}

function ownKeyIn(text: string, ownKeys: readonly OwnKey[]): OwnKey | undefined {
  if (text.length < SHORTEST_OWN_KEY) return undefined;
  for (const own of ownKeys) if (text.includes(own.value)) return own;
  return undefined;
}

const WHERE_KEYS_GO = 'Keyway neither stores nor repeats it. Provider keys go only in the fields made for them (providers[].api_key…).';

function refusal(param: string, where?: string): KeywayError {
  return invalidField(
    param === '' ? 'body' : param,
    `${where === undefined ? 'it' : where} looks like an API key (or holds one), and this field does not take keys: ${WHERE_KEYS_GO}`,
  );
}

function ownKeyRefusal(param: string, own: OwnKey, where?: string): KeywayError {
  return invalidField(
    param === '' ? 'body' : param,
    `${where === undefined ? 'it' : where} holds the key this body sends in ${own.param}, and this field does not take keys: ${WHERE_KEYS_GO}`,
  );
}
