// Migration 0011 replaces the two partial indexes of audited usage rows with `audited` at the end of
// usage_account_time. A database written before it keeps its request events: an audited row of the old
// schema is found after the upgrade, through the index, newest first, without a sort of the whole range.

import { afterAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, openStorage, type Storage } from '../../plugins/store-sqlite/database.ts';
import { MIGRATIONS } from '../../plugins/store-sqlite/migrations.ts';

const UPGRADE = '0011_usage_audit_through_account_time';
const directory = mkdtempSync(join(tmpdir(), 'keyway-audit-index-'));
let storage: Storage | undefined;

afterAll(() => {
  storage?.close();
  rmSync(directory, { recursive: true, force: true });
});

const insertRow = (id: number, accountId: string, createdAt: string, audited: number) =>
  `INSERT INTO usage_records (id, request_id, account_id, gateway_key_id, endpoint, requested_model, byok, status, input_tokens, output_tokens,
     cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd, latency_ms, streamed, fallback_attempts, created_at, audited)
   VALUES (${id}, 'req_${id}', '${accountId}', 'key_1', 'chat', 'gpt-4o', 1, 200, 1, 1, 0, 0, 0, 0.0001, 10, 0, 0, '${createdAt}', ${audited})`;

test('an audited row written before 0011 is a request event after it, read through usage_account_time', async () => {
  storage = await openStorage(`file:${join(directory, 'keyway.db')}`);
  // The database as the release before wrote it: every migration up to 0010.
  await storage.execute('CREATE TABLE keyway_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  for (const migration of MIGRATIONS.filter((entry) => entry.id !== UPGRADE)) {
    await storage.executeAtomically([...migration.statements, `INSERT INTO keyway_migrations (id, applied_at) VALUES ('${migration.id}', 'then')`]);
  }
  const before = await storage.queryRows("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'usage_audited%'");
  expect(before.map((row) => row.name).sort()).toEqual(['usage_audited_account_time', 'usage_audited_time']);
  await storage.execute(insertRow(1, 'acct_a', '2026-12-01T10:00:00.000Z', 1));
  await storage.execute(insertRow(2, 'acct_a', '2026-12-01T11:00:00.000Z', 0));
  await storage.execute(insertRow(3, 'acct_b', '2026-12-01T12:00:00.000Z', 1));

  const report = await migrate(storage);
  expect(report.applied).toEqual([UPGRADE]);
  const indexes = await storage.queryRows("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_records'");
  expect(indexes).toEqual([{ name: 'usage_account_time', sql: 'CREATE INDEX usage_account_time ON usage_records(account_id, created_at, audited)' }]);

  const query =
    'SELECT id FROM usage_records WHERE account_id = ? AND audited = 1 AND created_at >= ? AND created_at < ? ORDER BY created_at DESC, id DESC LIMIT 10';
  const parameters = ['acct_a', '2026-12-01T00:00:00.000Z', '2026-12-02T00:00:00.000Z'];
  expect(await storage.queryRows(query, parameters)).toEqual([{ id: 1 }]);
  const plan = (await storage.queryRows(`EXPLAIN QUERY PLAN ${query}`, parameters)).map((row) => String(row.detail));
  // The index gives the range and the filter; only ties at one instant are sorted (by id).
  expect(plan[0]).toMatch(/USING (COVERING )?INDEX usage_account_time \(account_id=\? AND created_at>\? AND created_at<\?\)/);
  expect(plan.some((detail) => detail.includes('USE TEMP B-TREE FOR ORDER BY'))).toBe(false);
});
