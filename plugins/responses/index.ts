// The OpenAI Responses API as a plugin: `POST /v1/responses` over every provider, the WebSocket
// upgrade answered with 426 (clients fall back to HTTP), and `GET /v1/responses/{id}` answered
// plainly, as Keyway keeps no responses (DELETE is left to the generic 404 until something is stored,
// as a mutating route would be an audited admin action). It uses only the plugin API and the services it is handed.

import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import type { Services as PluginServices } from '../../core/spec/services.ts';
import { responsesOperation } from './dialect.ts';
import { ResponseObjectSchema, ResponsesBodySchema } from './schema.ts';

export { responsesDialect, responsesOperation } from './dialect.ts';
export { chatRequestFromResponses, type ResponsesTranslation } from './request.ts';
export { responsesBodyFromResult, responsesUsageFromUsage, echoOf, type ResponseEcho } from './response.ts';
export { ResponsesStreamEncoder, type ResponsesStreamEncoderOptions } from './stream-encoder.ts';

function isWebSocketUpgrade(request: Request): boolean {
  return (request.headers.get('upgrade') ?? '').toLowerCase().includes('websocket');
}

/** `GET /v1/responses`: Codex's WebSocket transport. A 426 makes it fall back to `POST` with SSE. */
function upgradeAnswer(services: PluginServices, request: Request): Response {
  services.auth.authenticate(request.headers);
  if (!isWebSocketUpgrade(request)) throw services.errors.create('method_not_allowed', { method: 'GET', path: '/v1/responses' });
  throw services.errors.create('upgrade_required', {
    detail: 'The WebSocket transport of /v1/responses is not available on Keyway yet; send POST /v1/responses (stream: true for server-sent events).',
  });
}

/** Stored responses: Keyway keeps none, so every id is unknown (docs/api.md). */
function notStored(services: PluginServices, request: Request, id: string): Response {
  services.auth.authenticate(request.headers);
  throw services.errors.create('not_found', {
    detail: `No stored response '${id.slice(0, 100)}': Keyway does not store responses (store and previous_response_id are not available yet).`,
  });
}

export const responsesPlugin = definePlugin({
  name: 'dialect-openai-responses',
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'dialect',
  description: 'The OpenAI Responses API (/v1/responses) over every provider',
  setup({ services }) {
    return {
      dialect: responsesOperation.dialect,
      routes: [
        {
          method: 'POST',
          path: '/v1/responses',
          summary: 'OpenAI Responses API',
          body: ResponsesBodySchema,
          response: ResponseObjectSchema,
          handle: ({ request, clientAddress }) => services.inference.run(request, responsesOperation, clientAddress),
        },
        {
          method: 'GET',
          path: '/v1/responses',
          summary: 'Responses API WebSocket transport: answered 426 (use POST)',
          handle: ({ request }) => upgradeAnswer(services, request),
        },
        {
          method: 'GET',
          path: '/v1/responses/:id',
          summary: 'A stored response (Keyway stores none: 404)',
          handle: ({ request, params }) => notStored(services, request, params.id ?? ''),
        },
      ],
    };
  },
});
