// bun bench/usage-writer-batch.ts — the usage writer thread's own work per row (plugins/store-sqlite/
// usage-writer.ts), measured on this thread with the same calls: decoding a batch's journal text,
// inserting its rows, summing the built-in plugins' folds (analytics, reconciliation; core/spec/usage-fold.ts)
// and writing them, and any roll-up statement a plugin still runs after the batch. A SQLite file under /tmp with the real migrations and the writer's connection
// settings (PRAGMAS='…' adds others); rows shaped like bench/usage-writes.ts's (one account, key and
// model). BATCH (default 2000, KEYWAY_USAGE_BATCH_SIZE's default: the batch under load) and BATCHES
// set the size. Wall time on this thread, so a checkpoint's fsync counts; the mean is what the thread
// spends over many batches, the median a typical batch.

import { Database } from 'bun:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { journalText } from '../core/wire/usage-journal-text.ts';
import type { PluginContributions } from '../core/spec/plugin.ts';
import type { UsageRecord } from '../core/spec/store.ts';
import { analyticsPlugin } from '../plugins/analytics/index.ts';
import { RECONCILIATION_MIGRATIONS, RECONCILIATION_USAGE_FOLDS, RECONCILIATION_USAGE_ROLLUPS } from '../plugins/reconciliation/schema.ts';
import { usageFolder, writeFolds } from '../plugins/store-sqlite/fold-upsert.ts';
import { insertBatch } from '../plugins/store-sqlite/batch-insert.ts';
import { runFollowUp } from '../plugins/store-sqlite/follow-up.ts';
import { CONNECTION_PRAGMAS } from '../plugins/store-sqlite/connection-settings.ts';
import { sqliteStoreDriver } from '../plugins/store-sqlite/index.ts';
import { USAGE_COLUMN_NAMES, usageValuesFromJournalText } from '../plugins/store-sqlite/usage-values.ts';
import { benchUsageRecord } from '../test/helpers/usage-record.ts';

const BATCH = Number(process.env.BATCH ?? 2000);
const BATCHES = Number(process.env.BATCHES ?? 30);

const directory = mkdtempSync(join(tmpdir(), 'keyway-writer-bench-'));
const path = join(directory, 'keyway.db');
const analytics = (await analyticsPlugin.setup?.({ services: {} } as never)) as PluginContributions;
const store = await sqliteStoreDriver.open(`file:${path}`, { dataDirectory: directory, env: { KEYWAY_USAGE_WRITER: 'inline' } });
await store.migrate([
  { plugin: 'analytics', migrations: analytics.migrations?.sqlite ?? [] },
  { plugin: 'reconciliation', migrations: RECONCILIATION_MIGRATIONS.sqlite ?? [] },
]);
store.close();
const rollups = [...(analytics.usageRollups?.sqlite ?? []), ...(RECONCILIATION_USAGE_ROLLUPS.sqlite ?? [])];
const fold = usageFolder([...(analytics.usageFolds ?? []), ...RECONCILIATION_USAGE_FOLDS], USAGE_COLUMN_NAMES);

const database = new Database(path);
database.exec(CONNECTION_PRAGMAS);
// PRAGMAS='…' tries other settings on the writer's connection.
if (process.env.PRAGMAS !== undefined) database.exec(process.env.PRAGMAS);
const sql = `INSERT INTO usage_records (${USAGE_COLUMN_NAMES.join(', ')}) VALUES (${USAGE_COLUMN_NAMES.map(() => '?').join(', ')})`;

/**
 * Request ids as the gateway makes them (core/http/kit/respond.ts: a per-process prefix and a counter),
 * so the request-id index grows at its end. RANDOM_IDS=1 gives each row a UUID instead, as a client
 * sending its own random X-Request-Id does: every row then lands on another index page.
 */
const RANDOM_IDS = process.env.RANDOM_IDS === '1';
/** SPREAD=1: rows over 50 keys, 7 teams, 2 models and some failures, so a batch falls into hundreds of buckets, not a handful. */
const SPREAD = process.env.SPREAD === '1';
/** MEMBER=1: rows as a seed-team member's request leaves them (team, project, audited with IP and fingerprint). */
const MEMBER = process.env.MEMBER === '1';
const ID_PREFIX = `req_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`;
let sequence = 0;
function batchRows(): UsageRecord[] {
  const createdAt = new Date().toISOString();
  return Array.from({ length: BATCH }, () => {
    sequence += 1;
    const requestId = RANDOM_IDS ? `req_${crypto.randomUUID().replaceAll('-', '')}` : `${ID_PREFIX}${sequence.toString(36).padStart(6, '0')}`;
    const spread = SPREAD
      ? {
          gatewayKeyId: `key_${sequence % 50}`,
          teamId: `team_${sequence % 7}`,
          model: sequence % 3 === 0 ? 'gpt-4o' : 'gpt-4o-mini',
          status: sequence % 20 === 0 ? 500 : 200,
        }
      : {};
    const member = MEMBER
      ? {
          teamId: 'team_engineering',
          projectTag: 'project-a',
          audited: true,
          clientIp: '10.1.2.3',
          actorRole: 'developer',
          requestSha256: Bun.SHA256.hash(requestId, 'hex'),
        }
      : {};
    return benchUsageRecord(requestId, {
      projectTag: sequence % 5 === 0 ? 'checkout' : null,
      inputTokens: 212 + (sequence % 7),
      createdAt,
      ...spread,
      ...member,
    });
  });
}

const median = (values: number[]): number => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;
const phases = new Map<string, number[]>();
const record = (name: string, started: number): void => {
  const list = phases.get(name) ?? [];
  list.push(((performance.now() - started) * 1000) / BATCH);
  phases.set(name, list);
};

for (let round = 0; round < BATCHES; round++) {
  const rows = batchRows();
  const text = journalText(rows);
  let started = performance.now();
  const values = usageValuesFromJournalText(text, rows.length);
  record('decode journal text → values', started);
  // The batch as the writer writes it, all statements in one transaction, then split by phase in a second batch.
  started = performance.now();
  const cpu = process.cpuUsage();
  insertBatch(database, sql, values, rollups, fold);
  record('whole batch (insert + roll-ups, one transaction)', started);
  const used = process.cpuUsage(cpu);
  phases.set('whole batch, CPU time (user + system)', [...(phases.get('whole batch, CPU time (user + system)') ?? []), (used.user + used.system) / BATCH]);
  const again = usageValuesFromJournalText(journalText(batchRows()), rows.length);
  database.transaction(() => {
    let phase = performance.now();
    insertBatch(database, sql, again, []);
    record('  insert rows only', phase);
    phase = performance.now();
    const folded = fold(again);
    record(`  sum the folds (${folded.reduce((buckets, table) => buckets + table.rows.length, 0)} buckets in ${folded.length} tables)`, phase);
    phase = performance.now();
    writeFolds(database, folded);
    record('  write the folds (upserts)', phase);
    const last = Number((database.query('SELECT MAX(id) AS id FROM usage_records').get() as { id: number }).id);
    const first = last - BATCH + 1;
    for (const [index, text] of rollups.entries()) {
      phase = performance.now();
      runFollowUp(database.query(text), text, first, last);
      record(`  roll-up ${String(index).padStart(2)}: ${text.replace(/\s+/g, ' ').slice(0, 60)}`, phase);
    }
  })();
}

// The mean is what the thread spends (a WAL checkpoint lands in one batch in a few); the median is the typical batch.
const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
console.log(
  `usage writer work per row, batches of ${BATCH} × ${BATCHES}${RANDOM_IDS ? ', random request ids' : ''}${SPREAD ? ', spread over many buckets' : ''}${MEMBER ? ', rows of an audited team member' : ''} (µs per row: mean, median):`,
);
for (const [name, values] of phases) console.log(`${mean(values).toFixed(3).padStart(8)} ${median(values).toFixed(3).padStart(8)}  ${name}`);
database.close();
rmSync(directory, { recursive: true, force: true });
