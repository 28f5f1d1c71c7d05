// The comparison rules on their own: statuses, drift arithmetic, and which keys can be matched.

import { describe, expect, test } from 'bun:test';
import { compareKeys, compareModels, matchKeys, totalsOf, type KeywayRow, type MatchTolerance } from '../../plugins/reconciliation/compare.ts';
import type { ProviderReport } from '../../plugins/reconciliation/report-fetch.ts';

const DAY = '2026-12-01';
/** The defaults: $0.0001 and 1 % of the provider's figure. */
const TOLERANCE: MatchTolerance = { usd: 0.0001, percent: 1 };

function keyway(model: string, costUsd: number, input: number, output: number, providerKeyId = 'pk_one'): KeywayRow {
  return { day: DAY, model, providerKeyId, requests: 1, tokens: { input, output, cachedInput: 0, cacheWrite: 0 }, costUsd, unpricedRequests: 0 };
}

function report(models: Array<[string, number, number, number]>, keys: ProviderReport['keys'] = [], apiKeys: ProviderReport['apiKeys'] = []): ProviderReport {
  return {
    models: models.map(([model, costUsd, input, output]) => ({
      day: DAY,
      model,
      costUsd,
      tokens: { input, output, cachedInput: 0, cacheWrite: 0 },
      requests: null,
    })),
    keys,
    apiKeys,
  };
}

describe('rows per day and model', () => {
  test('matched, drift, missing on either side', () => {
    const rows = compareModels(
      'openai',
      [keyway('gpt-4o', 1, 100, 10), keyway('gpt-4o-mini', 0.5, 50, 5), keyway('gpt-4.1', 0.2, 20, 2)],
      report([
        ['gpt-4o', 1, 100, 10],
        ['gpt-4o-mini', 0.6, 50, 5],
        ['o3', 0.3, 30, 3],
      ]),
      TOLERANCE,
    );
    const byModel = Object.fromEntries(rows.map((row) => [row.model, row]));
    expect(byModel['gpt-4o']?.status).toBe('matched');
    expect(byModel['gpt-4o-mini']).toMatchObject({ status: 'drift', drift_usd: 0.1 });
    expect(byModel['gpt-4o-mini']?.drift_percent).toBeCloseTo(16.6667, 3);
    expect(byModel['gpt-4.1']).toMatchObject({ status: 'missing_at_provider', drift_usd: -0.2, drift_percent: null, provider_tokens: null });
    expect(byModel.o3).toMatchObject({ status: 'missing_in_keyway', drift_usd: 0.3, drift_percent: 100 });
    expect(totalsOf('openai', rows)).toMatchObject({ status: 'drift', keyway_cost_usd: 1.7, provider_cost_usd: 1.9, drift_usd: 0.2 });
  });

  test('equal cost with different token counts is still drift; a tolerance absorbs rounding', () => {
    const [tokens] = compareModels('openai', [keyway('gpt-4o', 1, 100, 10)], report([['gpt-4o', 1, 100, 11]]), TOLERANCE);
    expect(tokens?.status).toBe('drift');
    const [rounded] = compareModels('openai', [keyway('gpt-4o', 1.00004, 100, 10)], report([['gpt-4o', 1, 100, 10]]), TOLERANCE);
    expect(rounded?.status).toBe('matched');
  });

  test('a wrong price is drift even when the dollars are few: both tolerances must hold', () => {
    // Two gpt-4.1 calls priced at 3e-6/9e-6 by Keyway and billed at list 2e-6/8e-6: $0.000028, 21.875 %.
    const [priced] = compareModels('openai', [keyway('gpt-4.1', 0.000156, 20, 10)], report([['gpt-4.1', 0.000128, 20, 10]]), TOLERANCE);
    expect(priced).toMatchObject({ status: 'drift', drift_usd: -0.000028, drift_percent: -21.875 });
    // Within 1 % of the provider's figure and within $0.0001: matched.
    const [close] = compareModels('openai', [keyway('gpt-4o', 0.00505, 100, 10)], report([['gpt-4o', 0.005, 100, 10]]), TOLERANCE);
    expect(close).toMatchObject({ status: 'matched', drift_percent: -1 });
    // 1 % of a large bill is more than $0.0001: the absolute tolerance still holds it to $0.0001.
    const [large] = compareModels('openai', [keyway('gpt-4o', 100.001, 100, 10)], report([['gpt-4o', 100, 100, 10]]), TOLERANCE);
    expect(large?.status).toBe('drift');
    // A few micro-dollars, where rounding is a large share: at most $0.00001 of drift passes the relative test.
    const [tiny] = compareModels('openai', [keyway('gpt-4.1-nano', 0.000003, 10, 1)], report([['gpt-4.1-nano', 0.000002, 10, 1]]), TOLERANCE);
    expect(tiny).toMatchObject({ status: 'matched', drift_percent: -50 });
    const [overFloor] = compareModels('openai', [keyway('gpt-4.1-nano', 0.000013, 10, 1)], report([['gpt-4.1-nano', 0.000002, 10, 1]]), TOLERANCE);
    expect(overFloor?.status).toBe('drift');
    // The relative tolerance is a setting: 25 % lets the wrong price through again.
    const [loose] = compareModels('openai', [keyway('gpt-4.1', 0.000156, 20, 10)], report([['gpt-4.1', 0.000128, 20, 10]]), { usd: 0.0001, percent: 25 });
    expect(loose?.status).toBe('matched');
  });

  test('rows with nothing on either side (failed calls only) are left out', () => {
    expect(compareModels('openai', [keyway('gpt-4o', 0, 0, 0)], report([]), TOLERANCE)).toEqual([]);
  });
});

describe('key matching', () => {
  test('a key is matched by its ending, only when unambiguous', () => {
    const matches = matchKeys(
      [
        { id: 'pk_a', maskedKey: 'sk-proj-…abcd' },
        { id: 'pk_b', maskedKey: 'sk-proj-…wxyz' },
        { id: 'pk_c', maskedKey: 'sk-proj-…1234' },
        { id: 'pk_d', maskedKey: 'sk-…zzzz' },
        { id: 'pk_e', maskedKey: 'pplx-…9876' },
      ],
      [
        { id: 'key_a', hint: 'sk-pro...bcd' },
        { id: 'key_b1', hint: 'sk-pro...xyz' },
        { id: 'key_b2', hint: 'sk-svc...xyz' },
        { id: 'key_z', hint: 'sk-ant-api03-R2D...zzzz' },
        { id: 'key_e', hint: 'sk-abc...876' },
      ],
    );
    expect(matches.get('pk_a')).toEqual({ kind: 'masked_key', apiKey: { id: 'key_a', hint: 'sk-pro...bcd' } });
    expect(matches.get('pk_b')?.kind).toBe('ambiguous');
    expect(matches.get('pk_c')?.kind).toBe('none');
    expect(matches.get('pk_d')).toEqual({ kind: 'masked_key', apiKey: { id: 'key_z', hint: 'sk-ant-api03-R2D...zzzz' } });
    // Same ending, another family.
    expect(matches.get('pk_e')?.kind).toBe('none');
    expect(matchKeys([{ id: 'pk_a', maskedKey: 'sk-proj-…abcd' }], undefined).get('pk_a')?.kind).toBe('not_listed');
  });

  test('two Keyway keys fitting one provider hint are both ambiguous', () => {
    const matches = matchKeys(
      [
        { id: 'pk_1', maskedKey: 'sk-…abcd' },
        { id: 'pk_2', maskedKey: 'sk-proj-…abcd' },
      ],
      [{ id: 'key_x', hint: 'sk-ab...bcd' }],
    );
    expect([matches.get('pk_1')?.kind, matches.get('pk_2')?.kind]).toEqual(['ambiguous', 'ambiguous']);
  });

  test('per-key rows: matched tokens, unmatched keys, and provider keys no Keyway key claims', () => {
    const rows = compareKeys(
      'anthropic',
      [keyway('claude', 1, 100, 10, 'pk_a'), keyway('claude', 1, 7, 7, 'pk_c')],
      report(
        [],
        [
          { day: DAY, apiKeyId: 'apikey_a', tokens: { input: 100, output: 10, cachedInput: 0, cacheWrite: 0 } },
          { day: DAY, apiKeyId: 'apikey_other', tokens: { input: 5, output: 5, cachedInput: 0, cacheWrite: 0 } },
        ],
        [
          { id: 'apikey_a', hint: 'sk-ant-api03-Abc...aaaa' },
          { id: 'apikey_other', hint: 'sk-ant-api03-Oth...oooo' },
        ],
      ),
      [
        { id: 'pk_a', maskedKey: 'sk-ant-…aaaa' },
        { id: 'pk_c', maskedKey: 'sk-ant-…cccc' },
      ],
    );
    expect(rows.map((row) => [row.key_id, row.provider_api_key_id, row.status])).toEqual([
      ['pk_a', 'apikey_a', 'matched'],
      ['pk_c', null, 'unmatched'],
      [null, 'apikey_other', 'missing_in_keyway'],
    ]);
  });
});
