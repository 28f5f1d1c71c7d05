// The export's byte writer must write exactly what csvCell and csvLine write: compared cell by cell on
// random and hostile text, and line by line on random usage rows.

import { describe, expect, test } from 'bun:test';
import { CsvBytes } from '../../plugins/analytics/csv-bytes.ts';
import { csvCell, csvLine } from '../../plugins/analytics/csv.ts';
import { type ExportRow, writeUsageCsv } from '../../plugins/analytics/export-rows.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

// Compared as bytes: the old path encoded the text with TextEncoder (a lone surrogate becomes U+FFFD).
const encoder = new TextEncoder();
const random = seededRandom(20261206);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

/** Text from pieces a client could send: separators, quotes, formula starts, non-Latin, emoji, surrogates. */
const PIECES = ['a', 'Z', '9', ',', '"', '\r', '\n', '=', '+', '-', '@', '\t', ' ', 'é', '日本', '😀', '＝', '\uD83D', 'proj-a', '-5', '1e3'];
const randomText = (): string => Array.from({ length: Math.floor(random() * 8) }, () => pick(PIECES)).join('');

describe('CsvBytes', () => {
  test('a cell is byte for byte what csvCell writes', () => {
    const out = new CsvBytes(16);
    for (let round = 0; round < 5_000; round++) {
      const text = randomText();
      out.cell(text);
      expect({ text, bytes: [...out.take()] }).toEqual({ text, bytes: [...encoder.encode(csvCell(text))] });
    }
  });

  test('a usage row is the line csvLine writes from its columns', () => {
    const out = new CsvBytes(8);
    for (let round = 0; round < 2_000; round++) {
      const cost = pick([null, 0, 0.000123456, 1.5, 1e-9, 12.000000001]);
      const fees = cost === null ? null : pick([0, 0.25, 1e-10]);
      const row: ExportRow = {
        created_at: new Date(Date.UTC(2026, 10, 1) + Math.floor(random() * 3e9)).toISOString(),
        request_id: pick(['req_1', randomText()]),
        team_id: pick([null, randomText()]),
        team_name: pick([null, 'Finance, "Quoted" Team', '=HYPERLINK("x")', randomText()]),
        project_tag: pick([null, '=HYPERLINK("x")', randomText()]),
        gateway_key_id: randomText(),
        provider: pick([null, 'openai', randomText()]),
        model: pick([null, 'gpt-4o', randomText()]),
        requested_model: randomText(),
        provider_key_id: pick([null, 'pk_1']),
        key_owner: pick([null, 'account', 'platform'] as const),
        endpoint: pick(['/v1/chat/completions', randomText()]),
        status: pick([200, 402, 500]),
        error_code: pick([null, 'budget_exceeded', randomText()]),
        streamed: random() < 0.5,
        usage_estimated: random() < 0.5,
        fallback_attempts: pick([0, 1, 3]),
        priced: random() < 0.8,
        input_tokens: Math.floor(random() * 1e6),
        output_tokens: Math.floor(random() * 1e4),
        cached_input_tokens: Math.floor(random() * 100),
        cache_write_tokens: Math.floor(random() * 100),
        cache_write_1h_tokens: Math.floor(random() * 100),
        reasoning_tokens: Math.floor(random() * 100),
        cost_usd: cost,
        latency_ms: pick([0, 12, 1234.5]),
        platform_fees: fees,
        billed_cost: cost === null || fees === null ? null : fees === 0 ? cost : cost + fees,
      };
      const hour = `${row.created_at.slice(0, 13)}:00:00Z`;
      const expected = csvLine([
        'usage',
        row.created_at,
        hour,
        row.created_at.slice(0, 10),
        row.request_id,
        row.team_id,
        row.project_tag,
        row.gateway_key_id,
        row.provider,
        row.model,
        row.requested_model,
        row.provider_key_id,
        row.key_owner,
        row.endpoint,
        row.status,
        row.error_code,
        row.streamed,
        row.usage_estimated,
        row.fallback_attempts,
        1,
        row.priced ? 0 : 1,
        row.input_tokens,
        row.output_tokens,
        row.cached_input_tokens,
        row.cache_write_tokens,
        row.cache_write_1h_tokens,
        row.reasoning_tokens,
        row.cost_usd,
        row.latency_ms,
        row.platform_fees,
        row.billed_cost,
        row.team_name,
      ]);
      writeUsageCsv(row, out);
      expect([...out.take()]).toEqual([...encoder.encode(expected)]);
    }
  });
});
