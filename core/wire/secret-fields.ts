// Careless clients put keys in the wrong field: a gateway key as `model`, a provider key in
// `X-Provider` (swapped with `X-Provider-Key`), a key as the project tag. Such a value names nothing
// Keyway knows, and echoing it in an error or keeping it on a usage row (and so in exports, analytics
// and audit events) would spread the key. The names Keyway reads from a request are checked before
// anything else looks at them and refused with a 400 that names the field, never the value.

import { invalidField, type KeywayError } from '../errors.ts';
import { holdsClientKey, looksLikeSecret, redactClientKey } from '../credentials/secret-shapes.ts';

/**
 * For leaves that must not take a key as a name (a team's allowed projects) and header values a plugin
 * keeps or echoes: the public core's door to the shapes and to the request's own X-Provider-Key.
 */
export { holdsClientKey, looksLikeSecret, redactClientKey };

function refusal(param: string, what: string): KeywayError {
  return invalidField(
    param,
    `it looks like an API key, not ${what}, so Keyway neither uses nor repeats it. ` + 'A gateway key goes in Authorization, a provider key in X-Provider-Key.',
  );
}

/** Throws the refusal when `value` is a string that holds a key. */
export function refuseSecretName(param: string, value: unknown, what: string): void {
  if (typeof value === 'string' && looksLikeSecret(value)) throw refusal(param, what);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function refuseSecretNames(param: string, list: unknown, what: string): void {
  if (!Array.isArray(list)) return;
  for (let index = 0; index < list.length; index++) refuseSecretName(`${param}[${index}]`, list[index], what);
}

/**
 * The names an inference request gives Keyway, in any dialect: `model`, `provider`, the `routing`
 * object's names, and the `X-Provider` and `X-Project-Tag` headers. A request without routing or those
 * headers pays for one check of its model name.
 */
export function refuseSecretFields(body: unknown, headers: Headers): void {
  if (isObject(body)) {
    refuseSecretName('model', body.model, 'a model name');
    refuseSecretName('provider', body.provider, 'a provider name');
    const routing = body.routing;
    if (isObject(routing)) {
      refuseSecretName('routing.strategy', routing.strategy, 'a strategy name');
      refuseSecretNames('routing.provider_order', routing.provider_order, 'a provider name');
      refuseSecretNames('routing.fallback_reasons', routing.fallback_reasons, 'a fallback reason');
      if (isObject(routing.cost_weights))
        for (const name of Object.keys(routing.cost_weights)) refuseSecretName('routing.cost_weights', name, 'a provider name');
    }
  }
  refuseSecretHeader(headers, 'x-provider', 'X-Provider', 'a provider name');
  refuseSecretHeader(headers, 'x-project-tag', 'x-project-tag', 'a project tag');
}

/** A header holding a key by shape or value, or the request's own X-Provider-Key whatever its shape. */
function refuseSecretHeader(headers: Headers, name: string, param: string, what: string): void {
  const value = headers.get(name);
  if (value === null) return;
  refuseSecretName(param, value, what);
  if (holdsClientKey(value, headers)) throw refusal(param, what);
}
