// The OpenAI Responses API as a plugin: `POST /v1/responses` over every provider, stored responses
// (`store`, `previous_response_id`, `item_reference`, `GET`/`DELETE /v1/responses/{id}` and its
// `input_items`), and the WebSocket mode on `GET /v1/responses` (websocket.ts; answered 426 when
// turned off, so clients fall back to HTTP). It uses only the plugin API and its services.

import { Type } from '@sinclair/typebox';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';
import { numberSetting, onOffSetting } from '../../core/spec/settings.ts';
import { createResponsesDialect } from './dialect.ts';
import { ResponseObjectSchema, ResponsesBodySchema } from './schema.ts';
import { inputItemsPage, inputItemsQuery } from './input-items.ts';
import { preloadStoredResponses } from './preload.ts';
import { inputItemsOf, RESPONSES_MIGRATIONS, ResponseStore, storedResponsesHolder } from './store.ts';
import { acceptResponsesSocket } from './websocket.ts';

export { createResponsesDialect, responsesDialect, responsesOperation, type ConnectionMemory } from './dialect.ts';
export { acceptResponsesSocket } from './websocket.ts';
export { chatRequestFromResponses, type ResponsesTranslation } from './request.ts';
export { responsesBodyFromResult, responsesUsageFromUsage, echoOf, type ResponseEcho } from './response.ts';
export { ResponseStore, RESPONSES_TABLE, storedResponsesHolder } from './store.ts';
export { ResponsesStreamEncoder, type ResponsesStreamEncoderOptions } from './stream-encoder.ts';

const DAY_MS = 86_400_000;
/** Up to ten years of retention and a year of WebSocket age: beyond, a value is a typo. */
const RETENTION_DAYS_RANGE = { minimum: 0, maximum: 3_650 };
const MAX_AGE_MINUTES_RANGE = { minimum: 0, maximum: 525_600 };

const configSchema = Type.Object({
  store: Type.Boolean({ default: true, description: 'Keep responses (sealed) unless a request says store: false (KEYWAY_RESPONSES_STORE=off turns it off)' }),
  retentionDays: Type.Number({ minimum: 0, default: 30, description: 'How long a stored response is kept (KEYWAY_RESPONSES_RETENTION_DAYS)' }),
  cacheEntries: Type.Integer({ minimum: 0, default: 1_000, description: 'Stored responses kept in memory for fast continuations' }),
  websocketMaxAgeMinutes: Type.Number({
    minimum: 0,
    default: 60,
    description:
      "A WebSocket's age after which it takes no new response (websocket_connection_limit_reached, as OpenAI after 60 minutes); 0: no limit (KEYWAY_RESPONSES_WEBSOCKET_MAX_AGE_MINUTES)",
  }),
  websocket: Type.Boolean({
    default: true,
    description: 'Serve the WebSocket mode on GET /v1/responses; off answers the upgrade 426 so clients use POST (KEYWAY_RESPONSES_WEBSOCKET=off)',
  }),
});

function isWebSocketUpgrade(request: Request): boolean {
  return (request.headers.get('upgrade') ?? '').toLowerCase().includes('websocket');
}

/**
 * `GET /v1/responses` without an accepted upgrade: 405, or, when the WebSocket mode is turned off, 426
 * for an upgrade, on which Codex falls back to `POST` with SSE.
 */
function plainGetAnswer(services: Services, request: Request, clientAddress: () => string | undefined): Response {
  // GET is only the WebSocket handshake: a plain HTTP client is told to POST, like any other 405, and
  // like every other wrong method (docs/api.md) before any key is asked for: the answer says nothing
  // about the caller or the gateway's data.
  if (!isWebSocketUpgrade(request))
    throw services.errors.create('method_not_allowed', { method: 'GET', path: '/v1/responses' }, { headers: { allow: 'POST' } });
  // An upgrade is a request for the API: its key, and where it comes from, are checked before it
  // learns the mode is off (a key bound to a network learns nothing else from elsewhere).
  services.auth.admit(request.headers, clientAddress);
  throw services.errors.create('upgrade_required', {
    detail: 'The WebSocket mode of /v1/responses is turned off on this gateway; send POST /v1/responses (stream: true for server-sent events).',
  });
}

function notFound(services: Services, id: string, why: string): never {
  throw services.errors.create('not_found', { detail: `No stored response '${id.slice(0, 100)}'${why}.` });
}

export const responsesPlugin = definePlugin({
  name: 'dialect-openai-responses',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'dialect',
  environment: [
    { name: 'KEYWAY_RESPONSES_STORE', description: 'off: keep no responses' },
    { name: 'KEYWAY_RESPONSES_RETENTION_DAYS', description: 'Days stored responses are kept' },
    { name: 'KEYWAY_RESPONSES_WEBSOCKET', description: 'off: refuse the WebSocket mode' },
    { name: 'KEYWAY_RESPONSES_WEBSOCKET_MAX_AGE_MINUTES', description: 'The longest a Responses WebSocket stays open' },
  ],
  description: 'The OpenAI Responses API (/v1/responses) over every provider, with stored responses',
  configSchema,
  setup({ services, config, env, logger }) {
    // Off in the plugin settings or in the variable is off. The variable is read as every switch is (off,
    // false, no, 0; anything else stops the start): `false` once kept storing prompts, only `off` was heard.
    const storeVariable = onOffSetting('KEYWAY_RESPONSES_STORE', env.KEYWAY_RESPONSES_STORE, true);
    const websocketVariable = onOffSetting('KEYWAY_RESPONSES_WEBSOCKET', env.KEYWAY_RESPONSES_WEBSOCKET, true);
    const storeOn = config.store && storeVariable;
    const retentionMs =
      numberSetting('KEYWAY_RESPONSES_RETENTION_DAYS', env.KEYWAY_RESPONSES_RETENTION_DAYS, config.retentionDays, RETENTION_DAYS_RANGE) * DAY_MS;
    const store = storeOn ? new ResponseStore(services, logger, { retentionMs, cacheEntries: config.cacheEntries }) : undefined;
    const { dialect, operation, attachMemory, previousItems } = createResponsesDialect(store);
    const websocketOn = config.websocket && websocketVariable;
    const socketOptions = {
      services,
      operation,
      store,
      attachMemory,
      previousItems,
      preload: (request: Request) => (store === undefined ? Promise.resolve() : preloadStoredResponses(store, services, request)),
      maxAgeMs:
        numberSetting(
          'KEYWAY_RESPONSES_WEBSOCKET_MAX_AGE_MINUTES',
          env.KEYWAY_RESPONSES_WEBSOCKET_MAX_AGE_MINUTES,
          config.websocketMaxAgeMinutes,
          MAX_AGE_MINUTES_RANGE,
        ) * 60_000,
    };
    const why = store === undefined ? ': this gateway keeps no responses (store is off)' : ' (never stored, expired, deleted, or not yours)';
    return {
      dialect,
      migrations: RESPONSES_MIGRATIONS,
      ciphertextHolders: [storedResponsesHolder(services)],
      jobs: store === undefined ? [] : [{ name: 'responses-retention', intervalMs: 3_600_000, run: () => store.expire(), scope: 'cluster' }],
      routes: [
        {
          method: 'POST',
          path: '/v1/responses',
          summary: 'OpenAI Responses API',
          body: ResponsesBodySchema,
          response: ResponseObjectSchema,
          handle: async ({ request, clientAddress }) => {
            if (store !== undefined) await preloadStoredResponses(store, services, request);
            return services.inference.run(request, operation, clientAddress);
          },
        },
        {
          method: 'GET',
          path: '/v1/responses',
          summary: 'Responses API WebSocket mode (Upgrade: websocket): response.create frames in, typed events out',
          handle: ({ request, clientAddress }) => plainGetAnswer(services, request, clientAddress),
          ...(websocketOn ? { websocket: ({ request, clientAddress }) => acceptResponsesSocket(socketOptions, request, clientAddress) } : {}),
        },
        {
          method: 'GET',
          path: '/v1/responses/:id',
          role: 'developer',
          // OpenAI's SDKs send parameters of its own (`include[]`, `stream`) that Keyway does not use.
          query: 'any',
          summary: 'A stored response',
          handle: async ({ params, principal }) => {
            const id = params.id ?? '';
            const stored = store === undefined || principal === undefined ? undefined : await store.read(id, principal);
            if (stored === undefined) notFound(services, id, why);
            return services.http.json(stored.response);
          },
        },
        {
          method: 'GET',
          path: '/v1/responses/:id/input_items',
          role: 'developer',
          query: 'any',
          summary: 'The input items of a stored response (a cursor page)',
          handle: async ({ request, params, principal }) => {
            const id = params.id ?? '';
            const query = inputItemsQuery(services.http.requestUrl(request).searchParams);
            const stored = store === undefined || principal === undefined ? undefined : await store.read(id, principal);
            if (stored === undefined) notFound(services, id, why);
            return services.http.json(inputItemsPage(inputItemsOf(stored), query));
          },
        },
        {
          method: 'DELETE',
          path: '/v1/responses/:id',
          role: 'developer',
          summary: 'Delete a stored response',
          handle: async ({ params, principal }) => {
            const id = params.id ?? '';
            const deleted = store !== undefined && principal !== undefined && (await store.delete(id, principal));
            if (!deleted) notFound(services, id, why);
            return services.http.json({ id, object: 'response', deleted: true });
          },
        },
      ],
    };
  },
});
