// A stand-in for a libSQL server (sqld), for tests on a machine without one: the Hrana protocol over
// HTTP, version 2 with JSON (`POST /v2/pipeline`), which @libsql/client/web speaks by default, on
// one SQLite file through bun:sqlite. It answers `execute`, `batch` (with its step conditions),
// `sequence`, `get_autocommit`, `store_sql`/`close_sql` (the client's statement cache) and `close`. What it does not do as sqld does: every stream shares one
// connection, so an interactive transaction is not isolated from another stream's statements (the
// tests run one Keyway at a time on it), and there is no authentication, replication or cursor
// endpoint. `statements` lists what it ran, for a test to see that a start reached it.

import { Database } from 'bun:sqlite';

type HranaValue =
  | { type: 'null' }
  | { type: 'integer'; value: string }
  | { type: 'float'; value: number }
  | { type: 'text'; value: string }
  | { type: 'blob'; base64: string };

interface HranaStatement {
  sql?: string;
  sql_id?: number;
  args?: HranaValue[];
  want_rows?: boolean;
}

type HranaCondition =
  | { type: 'ok' | 'error'; step: number }
  | { type: 'not'; cond: HranaCondition }
  | { type: 'and' | 'or'; conds: HranaCondition[] }
  | { type: 'is_autocommit' };

interface HranaRequest {
  type: string;
  stmt?: HranaStatement;
  batch?: { steps: Array<{ stmt: HranaStatement; condition?: HranaCondition }> };
  sql?: string;
  sql_id?: number;
}

export interface FakeLibsqlServer {
  /** `http://127.0.0.1:<port>`, for KEYWAY_DATABASE_URL. */
  readonly url: string;
  /** The SQLite file behind it, for a test to read or seed. */
  readonly database: Database;
  readonly statements: string[];
  stop(): Promise<void>;
}

function toArgument(value: HranaValue): unknown {
  switch (value.type) {
    case 'null':
      return null;
    case 'integer':
      return BigInt(value.value);
    case 'float':
      return value.value;
    case 'text':
      return value.value;
    case 'blob':
      return Buffer.from(value.base64, 'base64');
  }
}

function toValue(value: unknown): HranaValue {
  if (value === null || value === undefined) return { type: 'null' };
  if (typeof value === 'bigint') return { type: 'integer', value: value.toString() };
  if (typeof value === 'number') return Number.isInteger(value) ? { type: 'integer', value: String(value) } : { type: 'float', value };
  if (typeof value === 'string') return { type: 'text', value };
  if (value instanceof Uint8Array) return { type: 'blob', base64: Buffer.from(value).toString('base64') };
  return { type: 'text', value: String(value) };
}

export function startFakeLibsqlServer(path: string, port = 0): FakeLibsqlServer {
  const database = new Database(path, { create: true, safeIntegers: true });
  database.exec('PRAGMA journal_mode = WAL');
  const statements: string[] = [];

  // SQL texts a stream stored (`store_sql`) and names by id; each stream has its own ids.
  let stored = new Map<number, string>();
  const execute = (statement: HranaStatement) => {
    const sql = statement.sql ?? (statement.sql_id === undefined ? '' : (stored.get(statement.sql_id) ?? ''));
    statements.push(sql);
    const prepared = database.prepare(sql);
    const args = (statement.args ?? []).map(toArgument) as never[];
    const columns = prepared.columnNames;
    const rows = (prepared.values(...args) as unknown[][]) ?? [];
    const changes = (database.query('SELECT changes() AS changes, last_insert_rowid() AS id').get() as { changes: bigint; id: bigint }) ?? {
      changes: 0n,
      id: 0n,
    };
    return {
      cols: columns.map((name) => ({ name, decltype: null })),
      rows: statement.want_rows === false ? [] : rows.map((row) => row.map(toValue)),
      affected_row_count: columns.length > 0 ? 0 : Number(changes.changes),
      last_insert_rowid: String(changes.id),
    };
  };

  const failure = (error: unknown) => ({
    message: error instanceof Error ? error.message : String(error),
    code: (error as { code?: string }).code ?? 'SQLITE_ERROR',
  });

  const batch = (steps: NonNullable<HranaRequest['batch']>['steps']) => {
    const results: Array<ReturnType<typeof execute> | null> = [];
    const errors: Array<ReturnType<typeof failure> | null> = [];
    const holds = (condition: HranaCondition | undefined): boolean => {
      if (condition === undefined) return true;
      switch (condition.type) {
        case 'ok':
          return results[condition.step] !== null && results[condition.step] !== undefined;
        case 'error':
          return errors[condition.step] !== null && errors[condition.step] !== undefined;
        case 'not':
          return !holds(condition.cond);
        case 'and':
          return condition.conds.every(holds);
        case 'or':
          return condition.conds.some(holds);
        case 'is_autocommit':
          return !database.inTransaction;
      }
    };
    for (const step of steps) {
      if (!holds(step.condition)) {
        results.push(null);
        errors.push(null);
        continue;
      }
      try {
        results.push(execute(step.stmt));
        errors.push(null);
      } catch (error) {
        results.push(null);
        errors.push(failure(error));
      }
    }
    return { step_results: results, step_errors: errors };
  };

  const answer = (request: HranaRequest) => {
    try {
      switch (request.type) {
        case 'execute':
          return { type: 'ok', response: { type: 'execute', result: execute(request.stmt ?? {}) } };
        case 'batch':
          return { type: 'ok', response: { type: 'batch', result: batch(request.batch?.steps ?? []) } };
        case 'sequence':
          database.exec(request.sql ?? '');
          return { type: 'ok', response: { type: 'sequence' } };
        case 'get_autocommit':
          return { type: 'ok', response: { type: 'get_autocommit', is_autocommit: !database.inTransaction } };
        case 'close':
          return { type: 'ok', response: { type: 'close' } };
        case 'store_sql':
          stored.set(request.sql_id ?? -1, request.sql ?? '');
          return { type: 'ok', response: { type: 'store_sql' } };
        case 'close_sql':
          stored.delete(request.sql_id ?? -1);
          return { type: 'ok', response: { type: 'close_sql' } };
        default:
          return { type: 'error', error: { message: `the fake libSQL server does not answer ${request.type}`, code: 'UNSUPPORTED' } };
      }
    } catch (error) {
      return { type: 'error', error: failure(error) };
    }
  };

  let batons = 0;
  const streams = new Map<string, Map<number, string>>();
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (request.method === 'GET' && path === '/v2') return new Response('', { status: 200 });
      if (request.method !== 'POST' || path !== '/v2/pipeline') return new Response('not found', { status: 404 });
      const body = (await request.json()) as { baton?: string | null; requests: HranaRequest[] };
      let baton = body.baton ?? undefined;
      if (baton === undefined) {
        batons += 1;
        baton = `baton-${batons}`;
      }
      stored = streams.get(baton) ?? new Map();
      streams.set(baton, stored);
      const results = body.requests.map(answer);
      const closes = body.requests.some((entry) => entry.type === 'close');
      if (closes) streams.delete(baton);
      return Response.json({ baton: closes ? null : baton, base_url: null, results });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    database,
    statements,
    async stop() {
      await server.stop(true);
      database.close();
    },
  };
}
