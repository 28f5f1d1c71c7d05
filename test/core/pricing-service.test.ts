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
    expect(first?.inputPerToken).toBe(catalog.get('openai', 'gpt-4o')?.inputCostPerToken as number);
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
  });
});
