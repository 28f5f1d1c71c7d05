// The pricing service's price views (core/catalog/pricing-service.ts): built once per model and
// answered from its cache, unpriced models included, rebuilt when the price table changes, and still
// right past the cache's bound.

import { describe, expect, test } from 'bun:test';
import { ModelCatalog, shippedCatalog, toModelInfo } from '../../core/catalog/catalog.ts';
import { createPricingService } from '../../core/catalog/pricing-service.ts';
import { BUILTIN_CATALOG_ALIASES } from '../helpers/catalog.ts';

function acme(model: string, input: number) {
  return toModelInfo(
    model,
    { litellm_provider: 'openai', input_cost_per_token: input, output_cost_per_token: 2 * input, max_output_tokens: 100 },
    'openai',
    [],
    'override',
    undefined,
  );
}

describe('price views', () => {
  test('the same view for every call until the table changes; an unpriced model answers undefined every time', () => {
    // A catalog of its own: the shipped one is shared by every gateway of the process, never replaced.
    const catalog = new ModelCatalog();
    catalog.replaceWith(shippedCatalog(BUILTIN_CATALOG_ALIASES));
    const pricing = createPricingService(catalog);
    const first = pricing.price('openai', 'gpt-4o');
    // The dearest of gpt-4o and its dated snapshots (core/catalog/snapshots.ts): gpt-4o-2024-05-13's input rate.
    expect(first?.inputPerToken).toBe(catalog.get('openai', 'gpt-4o-2024-05-13')?.inputCostPerToken as number);
    expect(first?.inputPerToken).toBeGreaterThan(catalog.get('openai', 'gpt-4o')?.inputCostPerToken as number);
    expect(pricing.price('openai', 'gpt-4o')).toBe(first);
    expect(pricing.price('openai', 'no-such-model')).toBeUndefined();
    expect(pricing.price('openai', 'no-such-model')).toBeUndefined();
    expect(pricing.price('no-such-provider', 'gpt-4o')).toBeUndefined();
    // A new table: the cached views are rebuilt from it, unpriced ones included.
    const replacement = new ModelCatalog();
    replacement.add(acme('gpt-4o', 9e-6));
    replacement.add(acme('no-such-model', 1e-6));
    catalog.replaceWith(replacement);
    expect(pricing.price('openai', 'gpt-4o')?.inputPerToken).toBe(9e-6);
    expect(pricing.price('openai', 'no-such-model')?.worstOutputPerToken).toBe(2e-6);
  });

  test('past the cache bound (10,000 models) every answer is still the catalog’s', () => {
    const catalog = new ModelCatalog();
    for (let index = 0; index < 10_050; index++) catalog.add(acme(`m-${index}`, (index + 1) * 1e-9));
    const pricing = createPricingService(catalog);
    for (let round = 0; round < 2; round++) {
      for (let index = 0; index < 10_050; index += 1) {
        const view = pricing.price('openai', `m-${index}`);
        if (view?.inputPerToken !== (index + 1) * 1e-9) throw new Error(`m-${index}: ${JSON.stringify(view)}`);
      }
    }
    expect(pricing.price('openai', 'm-10050')).toBeUndefined();
    // 40,000 lookups past the cache took 5.5 s on a loaded CI machine: the default 5 s is not what is tested.
  }, 30_000);
});

describe('prompts counted by a provider tokenizer', () => {
  const request = {
    model: 'm',
    messages: [
      { role: 'system' as const, content: 'You are terse.' },
      { role: 'user' as const, content: [{ type: 'text' as const, text: 'Count these words, please.' }] },
    ],
  };

  test('each text weighed by its count, never above its bytes; the rest of the bound as it was', async () => {
    const pricing = createPricingService(new ModelCatalog(), (provider) =>
      provider === 'acme' ? async (model) => (model === 'known' ? async (texts) => texts.map((text) => (text.length > 20 ? 1_000 : 2)) : undefined) : undefined,
    );
    const bound = pricing.promptTokenBound(request);
    const bytes = Buffer.byteLength('You are terse.') + Buffer.byteLength('Count these words, please.');
    // The short text counts 2; the long one's 1,000 is above its bytes, so its bytes stand.
    expect(await pricing.countPromptTokens('acme', 'known', request)).toBe(bound - bytes + 2 + Buffer.byteLength('Count these words, please.'));
    expect(await pricing.countPromptTokens('acme', 'unknown', request)).toBeUndefined();
    expect(await pricing.countPromptTokens('other', 'known', request)).toBeUndefined();
  });

  test('a tokenizer that cannot count leaves the request on the bound, and is reported once', async () => {
    const failures: string[] = [];
    const pricing = createPricingService(
      new ModelCatalog(),
      () => async () => async () => {
        throw new Error('thread gone');
      },
      (provider, model, error) => failures.push(`${provider}/${model}: ${(error as Error).message}`),
    );
    expect(await pricing.countPromptTokens('acme', 'known', request)).toBeUndefined();
    expect(await pricing.countPromptTokens('acme', 'known', request)).toBeUndefined();
    expect(failures).toEqual(['acme/known: thread gone']);
  });
});
