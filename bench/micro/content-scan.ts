// The content-blocking scan (policies/content-blocking/scan.ts) over a 10 KB prompt with no
// sensitive content, so every byte is read: the ≤ 50 µs target. Beside it a digit-heavy 10 KB text
// (invoices, dates, order ids: the number detectors' worst case) and the hook for a team without
// the control, which must cost nothing.

import { do_not_optimize, group } from 'mitata';
import { contentBlockingPolicy } from '../../policies/content-blocking/index.ts';
import { scanRequest, scanText } from '../../policies/content-blocking/scan.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import type { Hooks } from '../../core/spec/plugin.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { benchmark } from './registry.ts';

const PROSE =
  'Please review the quarterly report below and summarise the main risks for the board. Revenue grew 12.5% to $4,210,883.17 ' +
  'while churn fell from 3.1% to 2.4%. The migration of the billing service (ticket OPS-20931, see https://example.com/tickets/20931) ' +
  'is scheduled for 2025-03-14; order 1234567890123456 was refunded twice. ';
const CODE =
  'export async function fetchCustomerInvoices(customerId: string, options: { pageSize?: number } = {}): Promise<Invoice[]> {\n' +
  '  const response = await httpClient.get(`/v2/customers/${customerId}/invoices`, { params: { page_size: options.pageSize ?? 50 } });\n' +
  '  return response.data.items.map((item: RawInvoice) => normaliseInvoiceRecord(item, DEFAULT_CURRENCY_CONFIGURATION));\n}\n';
const DIGITS = 'Invoice 2024-000183, 14 items, total 18 933.20 EUR, due 2025-01-31, PO 4500018273, phone +44 20 7946 0958, ref 99812-221. ';

function tenKilobytes(unit: string): string {
  let text = '';
  while (text.length < 10_240) text += unit;
  return text.slice(0, 10_240);
}

export function registerContentScanBenches(): void {
  const mixed = tenKilobytes(PROSE + CODE);
  const digits = tenKilobytes(DIGITS);
  if (scanText(mixed) !== undefined || scanText(digits) !== undefined) throw new Error('the content-scan fixtures must not match a detector');
  const request: ChatRequest = {
    model: 'gpt-4o',
    messages: [
      { role: 'system', content: 'You are helpful.' },
      { role: 'user', content: mixed },
    ],
  };

  const team = { id: 'team_bench', accountId: 'default', name: 'bench', permissions: { usage_controls: { block_sensitive_content: false } } };
  const plugin = contentBlockingPolicy({ lookup: () => team });
  const hooks = (plugin.setup?.({ services: {} } as never) as { hooks: Hooks }).hooks;
  const context = { request, endpoint: 'chat' } as unknown as RequestContext;

  group('content scan', () => {
    benchmark('content scan: 10 KB prose and code, no match', () => do_not_optimize(scanRequest(request)), 'contentScan');
    benchmark('content scan: 10 KB of figures, no match', () => do_not_optimize(scanText(digits)));
    benchmark('content scan: hook, team without the control', () => do_not_optimize(hooks.call?.(context)));
  });
}
