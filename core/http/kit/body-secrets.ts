// Keys pasted into the wrong field of a management body: a gateway key as a team's name, a provider
// key in a member's e-mail, a token in an alert's webhook URL. Stored, such a value comes back in every
// listing, analytics breakdown and export, so it is refused when the body is read. Every management
// route is held to this by the core (guard.ts, app.ts); each route names the few fields made to hold a
// key (`providers[].api_key`, `admin_key`), and every other string and field name is checked.

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
 * Throws 400 `invalid_field` naming the first field (or, for a key used as a field name, the object
 * holding it) whose text holds a key, by shape or by value; never the value itself.
 */
export function refuseMisplacedSecrets(body: unknown, secretFields: SecretFields): void {
  visit(body, '', '', secretFields);
}

function visit(value: unknown, param: string, path: string, secretFields: SecretFields): void {
  if (value === null || (typeof value !== 'string' && typeof value !== 'object')) return;
  if (secretFields.includes(path)) return;
  if (typeof value === 'string') {
    if (looksLikeSecret(value)) throw refusal(param);
    return;
  }
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) visit(value[index], `${param}[${index}]`, `${path}[]`, secretFields);
    return;
  }
  for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
    if (looksLikeSecret(name)) throw refusal(param, 'a field name in it');
    visit(item, param === '' ? name : `${param}.${name}`, path === '' ? name : `${path}.${name}`, secretFields);
  }
}

function refusal(param: string, where?: string): KeywayError {
  return invalidField(
    param === '' ? 'body' : param,
    `${where === undefined ? 'it' : where} looks like an API key (or holds one), and this field does not take keys: ` +
      'Keyway neither stores nor repeats it. Provider keys go only in the fields made for them (providers[].api_key…).',
  );
}
