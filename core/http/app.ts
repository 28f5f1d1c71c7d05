import { Elysia } from 'elysia';
import { KeywayError } from '../errors.ts';
import type { RouteExtension, Runtime } from '../runtime.ts';
import { accountRoutes } from '../credentials/account-routes.ts';
import { guarded } from './kit/guard.ts';
import { chatCompletions, embeddings, listModels, type ClientAddress } from './inference-routes.ts';
import { providerKeyRoutes } from '../credentials/provider-key-routes.ts';
import { settingsRoutes } from '../routing/routes.ts';
import { errorAsResponse, json, requestIdOf } from './kit/respond.ts';

export interface AppOptions {
  extensions?: RouteExtension[];
}

/**
 * The HTTP surface. Bodies are read by Keyway itself (`parse: 'none'`): that is how malformed JSON
 * and oversized bodies get the spec's errors instead of the framework's.
 */
export function createApp(runtime: Runtime, options: AppOptions = {}): Elysia {
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
        await runtime.storage.queryRows('SELECT 1');
        if (runtime.store.current.version === 0) throw new KeywayError('not_ready', { detail: 'configuration not loaded yet' });
        return json({ status: 'ready', config_version: runtime.store.current.version });
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
    .get('/v1/plugins', ({ request }) => pluginList(runtime, request))
    .get('/v1/settings', ({ request }) => settingsRoutes.getSettings(runtime, request))
    .put('/v1/settings/routing', ({ request }) => settingsRoutes.putRouting(runtime, request), none)
    .get('/v1/providers/health', ({ request }) => settingsRoutes.getHealth(runtime, request))
    .post('/v1/providers/health-check', ({ request }) => settingsRoutes.putHealthCheck(runtime, request), none)
    .get('/v1/model-classes', ({ request }) => settingsRoutes.getModelClasses(runtime, request))
    .put('/v1/settings/model-classes', ({ request }) => settingsRoutes.putAccountModelClasses(runtime, request), none)
    .put('/v1/platform/model-classes', ({ request }) => settingsRoutes.putPlatformModelClasses(runtime, request), none)
    .put('/v1/platform/settings', ({ request }) => settingsRoutes.putPlatformSettings(runtime, request), none);
  for (const extend of options.extensions ?? []) extend(app as unknown as Elysia, runtime);
  return app as unknown as Elysia;
}

const pluginList = guarded('operator', (runtime) =>
  json({ plugins: runtime.plugins.plugins.map(({ name, version, kind, description }) => ({ name, version, kind, description })) }),
);
