import { do_not_optimize, group } from 'mitata';
import { resolveModel, type ModelResolverDependencies } from '../../core/routing/resolve-model.ts';
import type { ModelResolution, RequestContext, RoutePlanInput, RoutingStrategy } from '../../core/spec/plugin.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { typicalChatRequest } from './fixtures/chat-request.ts';
import { BENCH_ACCOUNT_ID } from './fixtures/repository-rows.ts';
import { benchRequestContext } from './fixtures/request-context.ts';
import type { BenchWorld } from './fixtures/world.ts';
import { benchmark } from './registry.ts';

const CATALOG_MODELS = ['gpt-4o', 'claude-3-opus-20240229'] as const;
/** Not in the catalog, so it resolves through the providers' name patterns (/^claude-/). */
const PATTERN_MODEL = 'claude-opus-9-preview';
const SESSION_ID = 'session-7f3a9c';

function strategyNamed(world: BenchWorld, name: string): RoutingStrategy {
  const strategy = world.strategies.get(name);
  if (strategy === undefined) throw new Error(`the ${name} strategy is not loaded`);
  return strategy;
}

/** The input Router.route() gives a strategy, built once so the plan benches time only the plan. */
function planInput(world: BenchWorld, request: ChatRequest, resolution: ModelResolution, stickyKey: string | undefined): RoutePlanInput {
  const modelClass = world.router.modelClassesFor(BENCH_ACCOUNT_ID).classOf(resolution.model);
  const equivalents = modelClass === undefined ? undefined : new Map(Object.entries(modelClass.models));
  if (equivalents !== undefined && resolution.provider !== undefined) equivalents.set(resolution.provider, resolution.model);
  return {
    request,
    resolution,
    routing: {},
    keys: world.snapshots.keysFor(BENCH_ACCOUNT_ID),
    isAvailable: world.router.isAvailable,
    isCoolingDown: world.router.isCoolingDown,
    stickyKey,
    equivalents,
    price: (provider, model) => {
      const info = world.catalog.get(provider, model);
      return info === undefined ? undefined : info.inputCostPerToken + info.outputCostPerToken;
    },
    platformMarkupPercent: 5,
  };
}

/** Model resolution and the strategy's plan: the route selection with a ≤ 5 µs target. */
export function registerRouteBenches(world: BenchWorld): void {
  const resolver: ModelResolverDependencies = { providers: world.providers, catalog: world.catalog, models: world.models };
  const keys = world.snapshots.keysFor(BENCH_ACCOUNT_ID);
  const request = typicalChatRequest('gpt-4o');
  const resolution = resolveModel(resolver, BENCH_ACCOUNT_ID, keys, 'gpt-4o', undefined);
  const byokPreferred = strategyNamed(world, 'byok_preferred');
  const costOptimized = strategyNamed(world, 'cost_optimized');
  const randomOrder = planInput(world, request, resolution, undefined);
  const sticky = planInput(world, request, resolution, SESSION_ID);
  if (byokPreferred.plan(randomOrder).length !== 3) throw new Error('byok_preferred should plan the three OpenAI keys of the bench account');

  // Router.route() alone times route selection without the hooks and awaits of runStagesBeforeCall().
  const route = (context: RequestContext) => world.router.route(context);
  const gptContext = benchRequestContext(world, 'gpt-4o');
  const patternContext = benchRequestContext(world, PATTERN_MODEL);
  const stickyContext = benchRequestContext(world, 'gpt-4o', { 'x-session-id': SESSION_ID });
  route(patternContext);
  if (patternContext.candidates[0]?.provider !== 'anthropic') throw new Error(`${PATTERN_MODEL} should route to the bench account's Anthropic keys`);

  group('route', () => {
    for (const model of CATALOG_MODELS) {
      benchmark(`route: resolveModel ${model} (catalog)`, () => do_not_optimize(resolveModel(resolver, BENCH_ACCOUNT_ID, keys, model, undefined)), 'route');
    }
    benchmark(
      `route: resolveModel ${PATTERN_MODEL} (pattern)`,
      () => do_not_optimize(resolveModel(resolver, BENCH_ACCOUNT_ID, keys, PATTERN_MODEL, undefined)),
      'route',
    );
    benchmark('route: byok_preferred plan (3 keys, random order)', () => do_not_optimize(byokPreferred.plan(randomOrder)), 'route');
    benchmark('route: byok_preferred plan (3 keys, sticky session)', () => do_not_optimize(byokPreferred.plan(sticky)), 'route');
    benchmark('route: cost_optimized plan (gpt-4o, flagship class)', () => do_not_optimize(costOptimized.plan(randomOrder)), 'route');
    benchmark(
      'route: Router.route gpt-4o (resolve + class + plan)',
      () => {
        route(gptContext);
        do_not_optimize(gptContext.candidates);
      },
      'route',
    );
    benchmark(
      `route: Router.route ${PATTERN_MODEL} (pattern)`,
      () => {
        route(patternContext);
        do_not_optimize(patternContext.candidates);
      },
      'route',
    );
    benchmark(
      'route: Router.route gpt-4o (X-Session-Id sticky)',
      () => {
        route(stickyContext);
        do_not_optimize(stickyContext.candidates);
      },
      'route',
    );
    // The whole stage as the lifecycle runs it: role check, resolveKeys, route, and no hooks loaded.
    benchmark(
      'route: LifecycleRunner.runStagesBeforeCall gpt-4o (keys + route, async)',
      async () => {
        await world.lifecycle.runStagesBeforeCall(gptContext);
        do_not_optimize(gptContext.candidates);
      },
      'route',
    );
  });
}
