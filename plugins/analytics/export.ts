// POST /v1/billing/export: the account's usage rows of a period as CSV or JSON, streamed. Rows are
// read a page at a time in (created_at, id) order through the (account_id, created_at) index, each
// page asked for only when the client has taken the last (ReadableStream pull), so a year of rows
// never sits in memory. Rows booked after the export began are left out (ids up to the highest at
// the start), so a file is one consistent cut. Breakdowns (`include`) are summed from the exported
// rows themselves and come after them.

import { Type, type Static } from '@sinclair/typebox';
import type { Principal } from '../../core/spec/principal.ts';
import type { Services } from '../../core/spec/services.ts';
import type { Store } from '../../core/spec/store.ts';
import { csvLine } from './csv.ts';
import { CsvBytes } from './csv-bytes.ts';
import {
  Breakdowns,
  CSV_COLUMNS,
  EXPORT_SELECT,
  INCLUDES,
  summaryCsvValues,
  toExportRow,
  writeUsageCsv,
  type ExportContext,
  type ExportRow,
  type Include,
} from './export-rows.ts';
import { feeRates, feeSchedule } from './fees.ts';
import { teamNamesOf } from './names.ts';
import { needsPlainSpelling, withPlainNumbers } from './plain-json.ts';
import { accountOf, periodAnswer, periodOf } from './scope.ts';

export const EXPORT_TYPES = ['byok_usage', 'platform_usage', 'all_usage'] as const;
export type ExportType = (typeof EXPORT_TYPES)[number];

/** Which rows each type holds: served with the account's keys, with platform keys, or every booked request. */
const TYPE_FILTERS: Readonly<Record<ExportType, string>> = {
  byok_usage: 'AND provider IS NOT NULL AND byok = 1',
  platform_usage: 'AND provider IS NOT NULL AND byok = 0',
  all_usage: '',
};

export const ExportRequestSchema = Type.Object(
  {
    type: Type.Optional(Type.Union([Type.Literal('byok_usage'), Type.Literal('platform_usage'), Type.Literal('all_usage')])),
    period: Type.Optional(Type.String({ maxLength: 40 })),
    start: Type.Optional(Type.String({ maxLength: 40 })),
    end: Type.Optional(Type.String({ maxLength: 40 })),
    format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('json')])),
    include: Type.Optional(Type.Array(Type.Union(INCLUDES.map((include) => Type.Literal(include))), { maxItems: INCLUDES.length * 2 })),
    account_id: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type ExportRequest = Static<typeof ExportRequestSchema>;

/** Rows per page: big enough that SQLite's per-statement cost vanishes, small enough to stay flat. */
export const EXPORT_PAGE_ROWS = 2_000;

export interface ExportPlan {
  accountId: string;
  type: ExportType;
  format: 'csv' | 'json';
  includes: Include[];
  from: Date;
  to: Date;
  periodName: string;
}

export function planExport(services: Services, principal: Principal, body: unknown): ExportPlan {
  const request = services.http.validateBody(ExportRequestSchema, body);
  const query = new URLSearchParams();
  for (const name of ['period', 'start', 'end'] as const) {
    const value = request[name];
    if (value !== undefined) query.set(name, value);
  }
  const period = periodOf(services, query);
  return {
    accountId: accountOf(services, principal, request.account_id),
    type: request.type ?? 'byok_usage',
    format: request.format ?? 'csv',
    includes: [...new Set(request.include ?? [])] as Include[],
    from: period.from,
    to: period.to,
    periodName: period.name,
  };
}

/** The export's rows, page by page, in (created_at, id) order, none booked after it began. */
export async function* exportRows(store: Store, plan: ExportPlan, pageRows = EXPORT_PAGE_ROWS): AsyncGenerator<Array<Record<string, unknown>>> {
  const highest = Number((await store.query('SELECT max(id) AS id FROM usage_records'))[0]?.id ?? 0);
  const filter = TYPE_FILTERS[plan.type];
  // The first page starts at `from`; each next one after the last row read (a keyset, never OFFSET).
  let rows = await store.query(
    `SELECT ${EXPORT_SELECT} FROM usage_records WHERE account_id = ? AND created_at >= ? AND created_at < ? AND id <= ? ${filter}
     ORDER BY created_at, id LIMIT ?`,
    [plan.accountId, plan.from.toISOString(), plan.to.toISOString(), highest, pageRows],
  );
  while (rows.length > 0) {
    yield rows;
    if (rows.length < pageRows) return;
    const last = rows[rows.length - 1] as Record<string, unknown>;
    rows = await store.query(
      `SELECT ${EXPORT_SELECT} FROM usage_records WHERE account_id = ? AND (created_at, id) > (?, ?) AND created_at < ? AND id <= ? ${filter}
       ORDER BY created_at, id LIMIT ?`,
      [plan.accountId, String(last.created_at), Number(last.id), plan.to.toISOString(), highest, pageRows],
    );
  }
}

const day = (instant: Date): string => instant.toISOString().slice(0, 10);

export function exportFilename(plan: ExportPlan): string {
  const lastDay = new Date(plan.to.getTime() - 1);
  const name = `keyway-${plan.accountId}-${plan.type}-${day(plan.from)}-to-${day(lastDay)}.${plan.format}`;
  return name.replace(/[^\w.-]/g, '_');
}

interface Encoder {
  head(): string;
  /** A page as text, or as bytes already (the CSV rows, written straight into bytes: csv-bytes.ts). */
  page(rows: Array<Record<string, unknown>>, breakdowns: Breakdowns): string | Uint8Array;
  tail(breakdowns: Breakdowns): string;
}

function csvEncoder(plan: ExportPlan, context: ExportContext): Encoder {
  const out = new CsvBytes();
  return {
    head: () => csvLine(CSV_COLUMNS),
    page(rows, breakdowns) {
      for (const raw of rows) {
        const row = toExportRow(raw, context);
        breakdowns.add(row);
        writeUsageCsv(row, out);
      }
      return out.take();
    },
    tail(breakdowns) {
      let chunk = '';
      for (const include of plan.includes) for (const entry of breakdowns.entries(include)) chunk += csvLine(summaryCsvValues(include, entry));
      return chunk + csvLine(summaryCsvValues('total', breakdowns.totalsAnswer()));
    },
  };
}

function jsonEncoder(plan: ExportPlan, context: ExportContext): Encoder {
  let first = true;
  return {
    head: () =>
      `{"object":"billing_export","type":${JSON.stringify(plan.type)},"account_id":${JSON.stringify(plan.accountId)},` +
      `"period":${JSON.stringify(periodAnswer({ name: plan.periodName, from: plan.from, to: plan.to }))},` +
      `"generated_at":${JSON.stringify(new Date().toISOString())},"currency":"USD","fee_rates":${JSON.stringify(withPlainNumbers(context.rates))},"data":[`,
    page(rows, breakdowns) {
      let chunk = '';
      for (const raw of rows) {
        const row = toExportRow(raw, context);
        breakdowns.add(row);
        chunk += (first ? '' : ',') + JSON.stringify(plainMoney(row));
        first = false;
      }
      return chunk;
    },
    tail(breakdowns) {
      let chunk = ']';
      for (const include of plan.includes) chunk += `,${JSON.stringify(include)}:${JSON.stringify(withPlainNumbers(breakdowns.entries(include)))}`;
      return `${chunk},"totals":${JSON.stringify(withPlainNumbers(breakdowns.totalsAnswer()))}}`;
    },
  };
}

/**
 * A usage row whose non-integer figures JSON.stringify writes in plain decimals. A copy only for the
 * rare row that needs one (a figure below a micro-dollar): this runs for every row of an export.
 */
function plainMoney(row: ExportRow): unknown {
  return plainAlready(row.cost_usd) && plainAlready(row.platform_fees) && plainAlready(row.billed_cost) && plainAlready(row.latency_ms)
    ? row
    : withPlainNumbers(row);
}

const plainAlready = (value: number | null): boolean => value === null || !needsPlainSpelling(value);

/** The export as a streamed body: each page is read only when the client has taken the previous one. */
export function exportStream(services: Services, plan: ExportPlan): ReadableStream<Uint8Array> {
  // The fee rates over time as they stood when the export began (each row at those in force when it
  // was booked; the header names today's); the team names of that moment too (a deleted team keeps its name).
  const context: ExportContext = { rates: feeRates(services), schedule: feeSchedule(services), teamNames: teamNamesOf(services, plan.accountId) };
  const encoder = plan.format === 'csv' ? csvEncoder(plan, context) : jsonEncoder(plan, context);
  const breakdowns = new Breakdowns(plan.includes);
  const bytes = new TextEncoder();
  let pages: AsyncGenerator<Array<Record<string, unknown>>> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controller.enqueue(bytes.encode(encoder.head()));
      },
      async pull(controller) {
        try {
          pages ??= exportRows(services.store, plan);
          const next = await pages.next();
          if (next.done === true) {
            controller.enqueue(bytes.encode(encoder.tail(breakdowns)));
            controller.close();
            return;
          }
          const page = encoder.page(next.value, breakdowns);
          controller.enqueue(typeof page === 'string' ? bytes.encode(page) : page);
        } catch (error) {
          services.logger.error({ accountId: plan.accountId, error: error instanceof Error ? error.message : String(error) }, 'billing export failed');
          controller.error(error);
        }
      },
      async cancel() {
        await pages?.return(undefined);
      },
    },
    { highWaterMark: 1 },
  );
}

/** Every field has a default, so a POST without a body (`curl -X POST`) asks for the defaults, as `{}` does. */
async function exportBody(services: Services, request: Request): Promise<unknown> {
  if (request.body === null || request.headers.get('content-length') === '0') return {};
  return services.http.readJson(request);
}

/**
 * What the audit entry of an export records: which account's rows, of which type and period, in which
 * format, with which breakdowns. Not how many rows: the entry is written before the file streams, and
 * counting a year of rows first would read them twice.
 */
export function exportRecord(plan: ExportPlan): Record<string, unknown> {
  return {
    object: 'billing_export',
    account_id: plan.accountId,
    type: plan.type,
    format: plan.format,
    period: periodAnswer({ name: plan.periodName, from: plan.from, to: plan.to }),
    include: plan.includes,
    filename: exportFilename(plan),
  };
}

export async function billingExport(services: Services, principal: Principal, request: Request): Promise<Response> {
  const plan = planExport(services, principal, await exportBody(services, request));
  // The answer is a stream, which the audit cannot read: the entry names the account exported (and is
  // filed under it, so an operator's export of another account is in that account's log) and what was
  // asked for, instead of `after: null` under the operator's own account.
  services.http.recordChange(request, { target: { account_id: plan.accountId }, accountId: plan.accountId, after: exportRecord(plan) });
  const contentType = plan.format === 'csv' ? 'text/csv; charset=utf-8; header=present' : 'application/json';
  return new Response(exportStream(services, plan), {
    status: 200,
    headers: {
      'content-type': contentType,
      'content-disposition': `attachment; filename="${exportFilename(plan)}"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    },
  });
}
