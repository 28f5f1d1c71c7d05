import { Elysia } from 'elysia';
import { accountRoutes } from '../credentials/account-routes.ts';
import { providerKeyRoutes } from '../credentials/provider-key-routes.ts';
import { descriptorFromError, KeywayError } from '../errors.ts';
import { masterKeyRoutes } from '../credentials/master-key-routes.ts';
import { healthRoutes } from '../routing/health/routes.ts';
import { routingRoutes } from '../routing/routes.ts';
import type { Runtime } from '../runtime.ts';
import type { RouteDefinition, WebSocketHandler } from '../spec/plugin.ts';
import { createAllowedMethods, routePathAndBelowPattern, routePathPattern } from './allowed-methods.ts';
import { createClientAddressResolver } from './client-address.ts';
import { createCors } from './cors.ts';
import { chatCompletions, embeddings, listModels, retrieveModel, type ClientAddress } from './inference-routes.ts';
import { createAdminActionEmitter } from './admin-actions.ts';
import { admitManagementCall, authenticateManagementCall, serveClientAddresses, withRequestId } from './kit/guard.ts';
import { errorAsResponse, json, requestIdOf } from './kit/respond.ts';
import { requestUrl } from './kit/request-url.ts';
import { platformRoutes } from './platform-routes.ts';
import { priceRoutes } from './price-routes.ts';
import { documented, operationDetail, serveOpenApi } from './openapi.ts';
import { routeDocs } from './route-docs.ts';
import { connectionsRoutes } from './connections-routes.ts';
import { createReadiness } from './readiness.ts';
import { isWebSocketUpgrade, type WebSocketHub } from './websocket.ts';

const NO_PARSE = { parse: 'none' } as const;

/**
 * The HTTP surface: the core's routes, then every route a plugin contributed. Bodies are read by
 * Keyway itself (`parse: 'none'`): that is how malformed JSON and oversized bodies get the spec's
 * errors instead of the framework's.
 */
export function createApp(runtime: Runtime, sockets?: WebSocketHub, options: { worker?: number | undefined } = {}): Elysia {
  let server: import('bun').Server<unknown> | null = null;
  const upgrade: Upgrade = (request, handler, requestId) =>
    server !== null && sockets !== undefined && sockets.upgrade(server, request, handler, { 'x-request-id': requestId });
  const resolveClientAddress = createClientAddressResolver(runtime.config.trustedProxies ?? []);
  const clientAddress: ClientAddress = (request) => resolveClientAddress(server?.requestIP(request)?.address, request.headers);
  serveClientAddresses(runtime, clientAddress);
  const readiness = createReadiness(runtime);
  const observeAdminAction = createAdminActionEmitter({
    observers: runtime.plugins.adminActionObservers,
    logger: runtime.logger,
    now: () => runtime.clock.now(),
    clientAddress,
  });
  const app = new Elysia();
  const allowedMethods = createAllowedMethods(() => app.routes);
  // Off unless KEYWAY_CORS_ORIGINS lists origins: then nothing runs per request.
  const corsOrigins = runtime.config.corsOrigins;
  if (corsOrigins !== undefined) {
    const dialectHeaders = runtime.plugins.routes.flatMap(({ value: route }) => route.corsRequestHeaders ?? []);
    const cors = createCors(corsOrigins, allowedMethods, dialectHeaders);
    app.onRequest(({ request, set }) => cors(request, set.headers as Record<string, string | number>));
  }
  // Plugin routes that answer errors in their own dialect's shape: a 405 on their path is written so
  // too, and a 404 on a path below theirs (the Anthropic SDK's `/v1/messages/batches`, QA20 seed F2).
  const refusalDialects = runtime.plugins.routes.flatMap(({ value: route }) =>
    route.refusal === undefined ? [] : [{ pattern: routePathPattern(route.path), below: routePathAndBelowPattern(route.path), refusal: route.refusal }],
  );
  // Which of several workers answered (KEYWAY_WORKERS): for operators tracing a request, and tests.
  const worker = options.worker === undefined ? undefined : String(options.worker);
  if (worker !== undefined) {
    app.onRequest(({ set }) => {
      set.headers['x-keyway-worker'] = worker;
    });
  }
  app
    .onStart(({ server: started }) => {
      server = started as import('bun').Server<unknown> | null;
    })
    .onError(({ code, error, request }) => {
      const requestId = requestIdOf(request);
      if (code === 'NOT_FOUND') {
        const url = requestUrl(request);
        // A path that exists under other methods: 405 with the methods it takes, not 404.
        const allowed = allowedMethods(url.pathname);
        const wrongMethod = allowed.length > 0 && !allowed.includes(request.method);
        const refusal = wrongMethod
          ? new KeywayError('method_not_allowed', { method: request.method, path: url.pathname }, { headers: { allow: allowed.join(', ') } })
          : new KeywayError('not_found', { detail: `No route ${request.method} ${url.pathname}.` });
        const dialect = refusalDialects.find((entry) => (wrongMethod ? entry.pattern : entry.below).test(url.pathname));
        if (dialect === undefined) return errorAsResponse(refusal, requestId, runtime.logger);
        const answer = dialect.refusal(descriptorFromError(refusal, requestId), requestId);
        answer.headers.set('x-request-id', requestId);
        for (const [name, value] of Object.entries(refusal.headers ?? {})) answer.headers.set(name, value);
        return answer;
      }
      return errorAsResponse(error, requestId, runtime.logger);
    })
    .get('/health', () => json({ status: 'ok' }), documented(routeDocs.health))
    .get(
      '/ready',
      async ({ request }) => {
        const report = await readiness();
        if (report.ready)
          return json({ status: 'ready', config_version: report.configVersion, ...(report.degraded.length > 0 ? { degraded: report.degraded } : {}) });
        const detail = report.problems.map((problem) => problem.detail).join('; ');
        const reasons = report.problems.map(({ check, detail: reason }) => ({ check, detail: reason }));
        return errorAsResponse(new KeywayError('not_ready', { detail }, { extra: { reasons } }), requestIdOf(request), runtime.logger);
      },
      documented(routeDocs.ready),
    )
    .post('/v1/chat/completions', ({ request }) => chatCompletions(runtime, request, clientAddress), documented(routeDocs.chatCompletions))
    .post('/v1/embeddings', ({ request }) => embeddings(runtime, request, clientAddress), documented(routeDocs.embeddings))
    .get('/v1/models', ({ request }) => listModels(runtime, request), documented(routeDocs.listModels))
    // Ids may hold a slash (`provider/model`, when two providers serve the model).
    .get('/v1/models/*', ({ request, params }) => retrieveModel(runtime, request, params['*']), documented(routeDocs.retrieveModel));
  // Routes without a management role (the dialects' inference routes) come before the admin-action
  // hook: Elysia applies a hook only to the routes registered after it, so the request path pays nothing.
  const pluginRoutes = runtime.plugins.routes.map(({ value }) => value);
  for (const route of pluginRoutes.filter((candidate) => candidate.role === undefined))
    addPluginRoute(app as unknown as Elysia, runtime, route, clientAddress, upgrade);
  app
    // Awaited: an observer's work (the audit event's write) ends before the answer is sent.
    .onAfterHandle(async ({ request, route, params, responseValue }) => {
      await observeAdminAction({ request, route, params, response: responseValue });
    })
    .post('/v1/providers/keys', ({ request }) => providerKeyRoutes.add(runtime, request), documented(routeDocs.addProviderKeys))
    .get('/v1/providers', ({ request }) => providerKeyRoutes.list(runtime, request), documented(routeDocs.listProviderKeys))
    .delete('/v1/providers/keys/:id', ({ request, params }) => providerKeyRoutes.remove(runtime, request, params), documented(routeDocs.removeProviderKey))
    .post(
      '/v1/providers/keys/:id/convert',
      ({ request, params }) => providerKeyRoutes.convert(runtime, request, params),
      documented(routeDocs.convertProviderKey),
    )
    .post('/v1/platform/keys', ({ request }) => providerKeyRoutes.addPlatform(runtime, request), documented(routeDocs.addPlatformKeys))
    .get('/v1/platform/keys', ({ request }) => providerKeyRoutes.listPlatform(runtime, request), documented(routeDocs.listPlatformKeys))
    .delete(
      '/v1/platform/keys/:id',
      ({ request, params }) => providerKeyRoutes.removePlatform(runtime, request, params),
      documented(routeDocs.removePlatformKey),
    )
    .get('/v1/platform/connections', ({ request }) => connectionsRoutes.get(runtime, request), documented(routeDocs.connections))
    .post('/v1/accounts', ({ request }) => accountRoutes.create(runtime, request), documented(routeDocs.createAccount))
    .get('/v1/accounts', ({ request }) => accountRoutes.list(runtime, request), documented(routeDocs.listAccounts))
    .post('/v1/keys', ({ request }) => accountRoutes.createKey(runtime, request), documented(routeDocs.createKey))
    .get('/v1/keys', ({ request }) => accountRoutes.listKeys(runtime, request), documented(routeDocs.listKeys))
    .delete('/v1/keys/:id', ({ request, params }) => accountRoutes.revokeKey(runtime, request, params), documented(routeDocs.revokeKey))
    .get('/v1/plugins', ({ request }) => platformRoutes.listPlugins(runtime, request), documented(routeDocs.listPlugins))
    .get('/v1/settings', ({ request }) => platformRoutes.getSettings(runtime, request), documented(routeDocs.getSettings))
    .put('/v1/settings/routing', ({ request }) => routingRoutes.putRouting(runtime, request), documented(routeDocs.putRouting))
    .get('/v1/providers/health', ({ request }) => healthRoutes.getHealth(runtime, request), documented(routeDocs.getHealth))
    .post('/v1/providers/health-check', ({ request }) => healthRoutes.putHealthCheck(runtime, request), documented(routeDocs.putHealthCheck))
    .get('/v1/model-classes', ({ request }) => routingRoutes.getModelClasses(runtime, request), documented(routeDocs.getModelClasses))
    .put('/v1/settings/model-classes', ({ request }) => routingRoutes.putAccountModelClasses(runtime, request), documented(routeDocs.putAccountModelClasses))
    .put('/v1/platform/model-classes', ({ request }) => routingRoutes.putPlatformModelClasses(runtime, request), documented(routeDocs.putPlatformModelClasses))
    .put('/v1/platform/settings', ({ request }) => platformRoutes.putPlatformSettings(runtime, request), documented(routeDocs.putPlatformSettings))
    .get('/v1/platform/prices', ({ request }) => priceRoutes.list(runtime, request), documented(routeDocs.listPrices))
    .put('/v1/platform/prices', ({ request }) => priceRoutes.put(runtime, request), documented(routeDocs.putPrices))
    .post('/v1/platform/prices/reload', ({ request }) => priceRoutes.reload(runtime, request), documented(routeDocs.reloadPrices))
    .delete('/v1/platform/prices/:provider/*', ({ request, params }) => priceRoutes.remove(runtime, request, params), documented(routeDocs.deletePrice))
    .post('/v1/admin/master-key/rotate', ({ request }) => masterKeyRoutes.rotate(runtime, request), documented(routeDocs.rotateMasterKey))
    .get('/v1/admin/master-key/status', ({ request }) => masterKeyRoutes.status(runtime, request), documented(routeDocs.masterKeyStatus));
  for (const route of pluginRoutes.filter((candidate) => candidate.role !== undefined))
    addPluginRoute(app as unknown as Elysia, runtime, route, clientAddress, upgrade);
  // Generated once, here, from every route above: nothing of it runs per request.
  serveOpenApi(app as unknown as Elysia);
  return app as unknown as Elysia;
}

/** Hands an upgrade request's socket to a route's handler; false when the handshake is not valid. */
type Upgrade = (request: Request, handler: WebSocketHandler, requestId: string) => boolean;

function addPluginRoute(app: Elysia, runtime: Runtime, route: RouteDefinition, clientAddress: ClientAddress, upgrade: Upgrade): void {
  const handler = pluginRouteHandler(runtime, route, clientAddress, upgrade);
  app.route(route.method, route.path, ({ request, params }: { request: Request; params: Record<string, string> }) => handler(request, params), {
    ...NO_PARSE,
    detail: pluginRouteDetail(route),
  });
}

/** A plugin route in the OpenAPI document: its summary and, when it declares them, its schemas. */
function pluginRouteDetail(route: RouteDefinition) {
  return operationDetail({ summary: route.summary ?? `${route.method} ${route.path}`, tag: 'Plugins', body: route.body, response: route.response });
}

/** Wraps a plugin's route: the declared role is checked first, and any throw becomes the spec's error. */
function pluginRouteHandler(runtime: Runtime, route: RouteDefinition, clientAddress: ClientAddress, upgrade: Upgrade) {
  return async (request: Request, params: Record<string, string>): Promise<Response | undefined> => {
    try {
      const principal = route.role === undefined ? undefined : await authenticateManagementCall(runtime, request, route.role, route.teamKeys === true);
      if (principal !== undefined) await admitManagementCall(request, runtime.config, route);
      const input = { request, params: params ?? {}, principal, clientAddress: () => clientAddress(request) };
      if (route.websocket !== undefined && isWebSocketUpgrade(request)) {
        const requestId = requestIdOf(request);
        // Once upgraded, the server no longer knows the request's socket (requestIP answers null), so
        // every later read would be "unknown": the address is resolved now and kept for the socket's life.
        const address = clientAddress(request);
        if (upgrade(request, await route.websocket({ ...input, clientAddress: () => address }), requestId)) return undefined;
        throw new KeywayError('invalid_request', {
          detail: 'The WebSocket handshake is incomplete (Sec-WebSocket-Key and Sec-WebSocket-Version 13 are needed).',
        });
      }
      const response = await route.handle(input);
      // Inference routes set their own id; only management answers may still lack one.
      return response.headers.has('x-request-id') ? response : withRequestId(response, requestIdOf(request));
    } catch (error) {
      return errorAsResponse(error, requestIdOf(request), runtime.logger);
    }
  };
}
