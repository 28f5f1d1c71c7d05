import { Elysia } from 'elysia';
import { accountRoutes } from '../credentials/account-routes.ts';
import { authenticate, requireRole } from '../credentials/authenticate.ts';
import { providerKeyRoutes } from '../credentials/provider-key-routes.ts';
import { KeywayError } from '../errors.ts';
import { healthRoutes } from '../routing/health/routes.ts';
import { routingRoutes } from '../routing/routes.ts';
import type { Runtime } from '../runtime.ts';
import type { RouteDefinition } from '../spec/plugin.ts';
import { chatCompletions, embeddings, listModels, type ClientAddress } from './inference-routes.ts';
import { withRequestId } from './kit/guard.ts';
import { errorAsResponse, json, requestIdOf } from './kit/respond.ts';
import { platformRoutes } from './platform-routes.ts';

/**
 * The HTTP surface: the core's routes, then every route a plugin contributed. Bodies are read by
 * Keyway itself (`parse: 'none'`): that is how malformed JSON and oversized bodies get the spec's
 * errors instead of the framework's.
 */
export function createApp(runtime: Runtime): Elysia {
  let server: import('bun').Server<unknown> | null = null;
  const clientAddress: ClientAddress = (request) => server?.requestIP(request)?.address;
  const none = { parse: 'none' } as const;
  const app = new Elysia()
    .onStart(({ server: started }) => {
      server = started as import('bun').Server<unknown> | null;
    })
    .onError(({ code, error, request }) => {
      const requestId = requestIdOf(request);
      if (code === 'NOT_FOUND') {
        const url = new URL(request.url);
        return errorAsResponse(new KeywayError('not_found', { detail: `No route ${request.method} ${url.pathname}.` }), requestId, runtime.logger);
      }
      return errorAsResponse(error, requestId, runtime.logger);
    })
    .get('/health', () => json({ status: 'ok' }))
    .get('/ready', async ({ request }) => {
      try {
        await runtime.store.ping();
        if (runtime.snapshots.current.version === 0) throw new KeywayError('not_ready', { detail: 'configuration not loaded yet' });
        return json({ status: 'ready', config_version: runtime.snapshots.current.version });
      } catch (error) {
        const failure = error instanceof KeywayError ? error : new KeywayError('not_ready', { detail: 'storage is not reachable' });
        return errorAsResponse(failure, requestIdOf(request), runtime.logger);
      }
    })
    .post('/v1/chat/completions', ({ request }) => chatCompletions(runtime, request, clientAddress), none)
    .post('/v1/embeddings', ({ request }) => embeddings(runtime, request, clientAddress), none)
    .get('/v1/models', ({ request }) => listModels(runtime, request))
    .post('/v1/providers/keys', ({ request }) => providerKeyRoutes.add(runtime, request), none)
    .get('/v1/providers', ({ request }) => providerKeyRoutes.list(runtime, request))
    .delete('/v1/providers/keys/:id', ({ request, params }) => providerKeyRoutes.remove(runtime, request, params), none)
    .post('/v1/platform/keys', ({ request }) => providerKeyRoutes.addPlatform(runtime, request), none)
    .get('/v1/platform/keys', ({ request }) => providerKeyRoutes.listPlatform(runtime, request))
    .delete('/v1/platform/keys/:id', ({ request, params }) => providerKeyRoutes.removePlatform(runtime, request, params), none)
    .post('/v1/accounts', ({ request }) => accountRoutes.create(runtime, request), none)
    .get('/v1/accounts', ({ request }) => accountRoutes.list(runtime, request))
    .post('/v1/keys', ({ request }) => accountRoutes.createKey(runtime, request), none)
    .get('/v1/keys', ({ request }) => accountRoutes.listKeys(runtime, request))
    .delete('/v1/keys/:id', ({ request, params }) => accountRoutes.revokeKey(runtime, request, params), none)
    .get('/v1/plugins', ({ request }) => platformRoutes.listPlugins(runtime, request))
    .get('/v1/settings', ({ request }) => platformRoutes.getSettings(runtime, request))
    .put('/v1/settings/routing', ({ request }) => routingRoutes.putRouting(runtime, request), none)
    .get('/v1/providers/health', ({ request }) => healthRoutes.getHealth(runtime, request))
    .post('/v1/providers/health-check', ({ request }) => healthRoutes.putHealthCheck(runtime, request), none)
    .get('/v1/model-classes', ({ request }) => routingRoutes.getModelClasses(runtime, request))
    .put('/v1/settings/model-classes', ({ request }) => routingRoutes.putAccountModelClasses(runtime, request), none)
    .put('/v1/platform/model-classes', ({ request }) => routingRoutes.putPlatformModelClasses(runtime, request), none)
    .put('/v1/platform/settings', ({ request }) => platformRoutes.putPlatformSettings(runtime, request), none);
  for (const { value: route } of runtime.plugins.routes) {
    const handler = pluginRouteHandler(runtime, route, clientAddress);
    app.route(route.method, route.path, ({ request, params }: { request: Request; params: Record<string, string> }) => handler(request, params), none);
  }
  return app as unknown as Elysia;
}

/** Wraps a plugin's route: the declared role is checked first, and any throw becomes the spec's error. */
function pluginRouteHandler(runtime: Runtime, route: RouteDefinition, clientAddress: ClientAddress) {
  return async (request: Request, params: Record<string, string>): Promise<Response> => {
    try {
      let principal;
      if (route.role !== undefined) {
        principal = authenticate(runtime.snapshots, request.headers);
        requireRole(principal, route.role);
      }
      const response = await route.handle({ request, params: params ?? {}, principal, clientAddress: () => clientAddress(request) });
      // Inference routes set their own id; only management answers may still lack one.
      return response.headers.has('x-request-id') ? response : withRequestId(response, requestIdOf(request));
    } catch (error) {
      return errorAsResponse(error, requestIdOf(request), runtime.logger);
    }
  };
}
