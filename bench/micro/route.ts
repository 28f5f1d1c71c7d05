import { do_not_optimize, group } from 'mitata';
import { authenticate } from '../../core/auth.ts';
import { createRequestContext } from '../../core/http/context.ts';
import { resolveModel, type ModelResolverDependencies } from '../../core/model-resolution.ts';
import type { RoutingStrategy } from '../../core/plugin.ts';
import { typicalChatRequest } from './fixtures/chat-request.ts';
import { BENCH_ACCOUNT_ID } from './fixtures/repository-rows.ts';
import type { BenchWorld } from './fixtures/world.ts';
import { benchmark } from './registry.ts';

const CATALOG_MODELS = ['gpt-4o', 'claude-3-opus-20240229'] as const;
/** Not in the catalog, so it resolves through the providers' name patterns (/^claude-/). */
const PATTERN_MODEL = 'claude-opus-9-preview';

/** Model resolution and the strategy's plan: the route selection with a ≤ 5 µs target. */
export function registerRouteBenches(world: BenchWorld): void {
  const resolver: ModelResolverDependencies = { providers: world.providers, catalog: world.catalog, models: world.models };
  const keys = world.store.keysFor(BENCH_ACCOUNT_ID);
  const strategy: RoutingStrategy | undefined = world.strategies.get('byok_preferred');
  if (strategy === undefined) throw new Error('the byok_preferred strategy is not loaded');
  const isAvailable = world.gateway.isAvailable;
  const request = typicalChatRequest('gpt-4o');
  const select = (model: string) => {
    const resolution = resolveModel(resolver, BENCH_ACCOUNT_ID, keys, model, undefined);
    return strategy.plan({ request, resolution, routing: {}, keys, isAvailable });
  };
  const gptResolution = resolveModel(resolver, BENCH_ACCOUNT_ID, keys, 'gpt-4o', undefined);
  const patternCandidates = select(PATTERN_MODEL);
  if (select('gpt-4o').length !== 3 || patternCandidates[0]?.provider !== 'anthropic') throw new Error('the route fixture does not select the expected keys');

  const headers = new Headers({ authorization: `Bearer ${world.benchBearerKey}` });
  const context = createRequestContext('req_bench', new Request('http://keyway.bench/v1/chat/completions', { headers }), authenticate(world.store, headers), 'chat', request, undefined);

  group('route', () => {
    for (const model of CATALOG_MODELS) {
      benchmark(`route: resolveModel ${model} (catalog)`, () => do_not_optimize(resolveModel(resolver, BENCH_ACCOUNT_ID, keys, model, undefined)), 'route');
    }
    benchmark(`route: resolveModel ${PATTERN_MODEL} (pattern)`, () => do_not_optimize(resolveModel(resolver, BENCH_ACCOUNT_ID, keys, PATTERN_MODEL, undefined)), 'route');
    benchmark('route: byok_preferred plan (3 keys)', () => do_not_optimize(strategy.plan({ request, resolution: gptResolution, routing: {}, keys, isAvailable })), 'route');
    benchmark('route: select gpt-4o (resolve + plan)', () => do_not_optimize(select('gpt-4o')), 'route');
    benchmark(`route: select ${PATTERN_MODEL} (resolve + plan)`, () => do_not_optimize(select(PATTERN_MODEL)), 'route');
    // The pipeline's own stage: keysFor, routing defaults, strategy lookup, resolve and plan, plus
    // the cost of prepare() being async even with no hooks loaded.
    benchmark('route: Gateway.prepare gpt-4o (keys + route, async)', async () => {
      await world.gateway.prepare(context);
      do_not_optimize(context.candidates);
    }, 'route');
  });
}
