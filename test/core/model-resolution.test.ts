import { describe, expect, test } from 'bun:test';
import { ModelCatalog, toModelInfo } from '../../core/catalog/catalog.ts';
import { builtinCatalog } from '../helpers/catalog.ts';
import { KeywayError } from '../../core/errors.ts';
import { resolveModel, type ModelResolverDependencies } from '../../core/routing/resolve-model.ts';
import type { ReportedModels } from '../../core/routing/reported-models.ts';
import type { ProviderAdapter, ProviderKeyRecord, ResolvedKeys } from '../../core/spec/plugin.ts';

function adapter(name: string, modelPatterns: RegExp[] = []): ProviderAdapter {
  const unused = () => Promise.reject(new Error('not called'));
  return { name, defaultBaseUrl: 'http://unused', modelPatterns, chat: unused, chatStream: unused, listModels: unused };
}

const providers = new Map<string, ProviderAdapter>([
  ['openai', adapter('openai', [/^gpt-/])],
  ['anthropic', adapter('anthropic', [/^claude-/])],
  ['google', adapter('google', [/^gemini-/])],
  ['cohere', adapter('cohere', [/^command/])],
  ['perplexity', adapter('perplexity', [/^sonar/])],
  ['groq', adapter('groq')],
  ['together', adapter('together')],
  ['ollama', adapter('ollama')],
]);

function key(provider: string): ProviderKeyRecord {
  return { id: `pk_${provider}`, provider, owner: 'account', accountId: 'acc', organizationId: undefined, settings: {}, status: 'active', weight: 1 };
}

function keys(...held: string[]): ResolvedKeys {
  return { account: new Map(held.map((provider) => [provider, [key(provider)]])), platform: new Map() };
}

const reported = new Map<string, Set<string>>([['ollama', new Set(['llama3.1:8b'])]]);
const models = {
  providersReporting: (_account: string, model: string) => [...reported].filter(([, names]) => names.has(model)).map(([provider]) => provider),
  modelsOf: () => reported,
} as unknown as ReportedModels;

const dependencies: ModelResolverDependencies = { providers, catalog: builtinCatalog(), models };

function failure(run: () => unknown): KeywayError {
  try {
    run();
  } catch (error) {
    return error as KeywayError;
  }
  throw new Error('expected a failure');
}

describe('model selection', () => {
  test.each([
    ['gpt-4-turbo-preview', 'openai'],
    ['claude-3-opus-20240229', 'anthropic'],
    ['gemini-pro', 'google'],
    ['command-r-plus', 'cohere'],
    ['sonar', 'perplexity'],
  ])('the seed name %s selects %s through the catalog', (model, provider) => {
    expect(resolveModel(dependencies, 'acc', keys(), model, undefined)).toEqual({ provider, model, explicit: false });
  });

  test('a name the catalog does not know falls back to the provider patterns', () => {
    expect(resolveModel(dependencies, 'acc', keys(), 'claude-opus-9-preview', undefined).provider).toBe('anthropic');
  });

  test('a name only a key reports (an Ollama model) selects that provider', () => {
    expect(resolveModel(dependencies, 'acc', keys('ollama'), 'llama3.1:8b', undefined).provider).toBe('ollama');
  });

  test('provider/model and the provider field name the provider explicitly', () => {
    expect(resolveModel(dependencies, 'acc', keys(), 'anthropic/claude-sonnet-4-5', undefined)).toEqual({
      provider: 'anthropic',
      model: 'claude-sonnet-4-5',
      explicit: true,
    });
    expect(resolveModel(dependencies, 'acc', keys(), 'gpt-4o', 'openai')).toEqual({ provider: 'openai', model: 'gpt-4o', explicit: true });
    expect(resolveModel(dependencies, 'acc', keys(), 'openai/gpt-4o', 'openai').model).toBe('gpt-4o');
  });

  test('an unknown provider field is a 400 naming the known ones', () => {
    const error = failure(() => resolveModel(dependencies, 'acc', keys(), 'gpt-4o', 'martian'));
    expect({ status: error.status, param: error.param }).toEqual({ status: 400, param: 'provider' });
    expect(error.message).toContain('openai');
  });

  test('a name several providers serve: the one the account holds wins, otherwise 404 listing them', () => {
    const catalog = new ModelCatalog({});
    for (const provider of ['groq', 'together']) {
      catalog.add(toModelInfo('shared-model', { mode: 'chat', input_cost_per_token: 0, output_cost_per_token: 0 }, provider, []));
    }
    const shared = { ...dependencies, catalog };
    expect(resolveModel(shared, 'acc', keys('together'), 'shared-model', undefined).provider).toBe('together');
    const error = failure(() => resolveModel(shared, 'acc', keys('groq', 'together'), 'shared-model', undefined));
    expect(error.status).toBe(404);
    expect(error.extra?.candidates).toEqual(['groq/shared-model', 'together/shared-model']);
  });

  test("exact names win over name patterns: a key's listing decides between overlapping patterns", () => {
    // Two providers whose patterns both match one name, as OpenAI's `text-embedding-*` once matched Google's model.
    const overlapping = new Map<string, ProviderAdapter>([
      ['openai', adapter('openai', [/^text-embedding-/])],
      ['google', adapter('google', [/^text-embedding-00\d$/])],
    ]);
    const listing = new Map<string, Set<string>>([
      ['openai', new Set(['text-embedding-3-small'])],
      ['google', new Set(['text-embedding-004'])],
    ]);
    const listed = {
      providersReporting: (_account: string, model: string) => [...listing].filter(([, names]) => names.has(model)).map(([provider]) => provider),
      modelsOf: () => listing,
    } as unknown as ReportedModels;
    const both = keys('openai', 'google');
    const resolved = resolveModel({ providers: overlapping, catalog: new ModelCatalog({}), models: listed }, 'acc', both, 'text-embedding-004', undefined);
    expect(resolved.provider).toBe('google');
    // Without a listing the patterns alone cannot tell: a 404 naming both, as before.
    const unlisted = { ...listed, providersReporting: () => [] } as unknown as ReportedModels;
    const error = failure(() =>
      resolveModel({ providers: overlapping, catalog: new ModelCatalog({}), models: unlisted }, 'acc', both, 'text-embedding-004', undefined),
    );
    expect(error.extra?.candidates).toEqual(['openai/text-embedding-004', 'google/text-embedding-004']);
  });

  test('an unknown name is a 404 with close matches', () => {
    const error = failure(() => resolveModel(dependencies, 'acc', keys('ollama'), 'llama3.1:7b', undefined));
    expect({ status: error.status, code: error.code }).toEqual({ status: 404, code: 'model_not_found' });
    expect(error.extra?.suggestions).toContain('llama3.1:8b');
  });
});
