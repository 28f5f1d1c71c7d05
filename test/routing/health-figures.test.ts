// How GET /v1/providers/health combines several workers' windows (core/routing/health/figures.ts): counts
// add, the success rate comes from the summed counts, percentiles from the union of the latencies (not an
// average of each worker's), the latest rate-limit headroom wins; an answer that does not parse is refused.

import { describe, expect, test } from 'bun:test';
import { combineProviders, latencyOf, parseAccountFigures, successRateOf, type ProviderFigures } from '../../core/routing/health/figures.ts';

const worker = (requests: number, failures: number, latencies: number[], rateLimit: { value: number; at: number } | null): ProviderFigures => ({
  window: { requests, failures, latencies },
  rateLimit,
  keys: { pk_1: { window: { requests, failures, latencies }, rateLimit } },
});

describe('combined health figures', () => {
  test('counts add, rates and percentiles come from the union, the latest headroom wins', () => {
    // Worker 1: one 429 alone. Worker 2: two quick successes and one slow one.
    const combined = combineProviders([worker(1, 1, [], { value: 5, at: 2_000 }), worker(3, 0, [10, 20, 900], { value: 9, at: 1_000 })]);
    expect(combined.window).toEqual({ requests: 4, failures: 1, latencies: [10, 20, 900] });
    expect(successRateOf(combined.window)).toBe(75);
    expect(latencyOf(combined.window, 50)).toBe(20);
    expect(latencyOf(combined.window, 95)).toBe(900);
    expect(combined.rateLimit).toEqual({ value: 5, at: 2_000 });
    expect(combined.keys.pk_1?.window.requests).toBe(4);
    expect(successRateOf(undefined)).toBe(100);
  });

  test("another worker's answer is read field by field; one that does not parse is left out whole", () => {
    const text = JSON.stringify({ openai: worker(2, 1, [30, 10], null) });
    expect(parseAccountFigures(text)?.openai?.window).toEqual({ requests: 2, failures: 1, latencies: [10, 30] });
    for (const bad of [
      'not json',
      '[]',
      '{"openai": {"window": {"requests": -1, "failures": 0, "latencies": []}, "keys": {}}}',
      '{"openai": {"window": {"requests": 1, "failures": 0, "latencies": ["x"]}, "keys": {}}}',
    ])
      expect(parseAccountFigures(bad)).toBeUndefined();
  });
});
