// One Keyway instance per database served over the network (a libSQL server, PostgreSQL) unless the
// instances share their counters (KEYWAY_REDIS_URL). Each instance keeps its own budget and rate-limit
// counters and configuration snapshot otherwise, so two drift apart: the QA17 SRE review saw a team
// budget spent 1.8 times over on one SQLite file, and a libSQL server let the same happen unchecked
// (QA18). The embedded file has a kernel lock (plugins/store-sqlite/instance-lock.ts); a server has
// no file to lock, so the instance holds a lease row in the database itself instead:
//
// - taken at start, before anything else touches the database, by the process that serves alone or
//   by the primary of the workers (they are one instance and share its counters); the row names its
//   holder, and a start that finds a live lease of another holder is refused in one line;
// - renewed every third of its length; the database's clock decides when it ends, so the instances'
//   clocks need not agree;
// - given back when the instance stops (a drain included); one that died (SIGKILL, OOM, a lost host)
//   blocks the next start for at most the lease's length (KEYWAY_INSTANCE_LEASE_MS, 15 s by default).
//
// Instances with Redis are many on purpose, but one without it beside them is the same drift (QA20 ops:
// it never heard a key revoked on the others). They keep a second row alive together, the shared-counters
// row, and each kind refuses to start while the other's row is live. Each claims its row before it looks
// for the other's, so of two starting at once at least one sees the other.
//
// The statements are plain SQL with `?` placeholders, the same on SQLite, libSQL and PostgreSQL: any
// connection that runs one statement and answers its rows can hold the lease.

import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { LEASE_TABLE, type LeaseConnection, type LeaseDialect } from '../spec/instance-lease.ts';

export { LEASE_TABLE, type LeaseConnection, type LeaseDialect } from '../spec/instance-lease.ts';

export interface LeaseLogger {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface InstanceLeaseOptions {
  /** How long the lease lasts unrenewed (KEYWAY_INSTANCE_LEASE_MS). */
  ttlMs: number;
  /** The database as a message may name it: never its URL, which can hold a password (`the libSQL server at db.internal:8080`). */
  where: string;
  logger: LeaseLogger;
  /** Who this instance is, in a refusal another instance prints; by default this host and pid. */
  described?: string;
}

export interface InstanceLease {
  /** This instance's id in the lease row. */
  readonly holder: string;
  /** Stops renewing and deletes the row if it is still this instance's; the connection closes. */
  release(): Promise<void>;
}

/** A start refused because another instance holds the lease: printed alone, as one line. */
export class InstanceLeaseError extends Error {
  override name = 'InstanceLeaseError';
}

const LEASE_NAME = 'instance';
/** Kept alive by every instance with shared counters: any of them renews it, none deletes it. */
const SHARED_NAME = 'shared-counters';

/** The database's own clock in epoch milliseconds: the instances' clocks may differ, the database's is one. */
const NOW_MS: Record<LeaseDialect, string> = {
  sqlite: "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
  postgres: 'CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)',
};

const CREATE = `CREATE TABLE IF NOT EXISTS ${LEASE_TABLE} (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  described TEXT NOT NULL,
  expires_at BIGINT NOT NULL
)`;

/**
 * Creates the lease table unless it exists. Instances starting at once on a fresh database (a first
 * rollout of several replicas) run it together, and PostgreSQL's CREATE TABLE IF NOT EXISTS can then fail
 * in all but one (`duplicate key value violates unique constraint "pg_type_typname_nsp_index"`): run
 * again, it finds the table the other made.
 */
async function createLeaseTable(connection: LeaseConnection): Promise<void> {
  try {
    await connection.query(CREATE, []);
  } catch (first) {
    await connection.query(CREATE, []).catch(() => {
      throw first;
    });
  }
}

/** Takes the lease, or renews it: only when it is this holder's already, or has run out. */
function claimStatement(dialect: LeaseDialect): string {
  const now = NOW_MS[dialect];
  return (
    `INSERT INTO ${LEASE_TABLE} (name, holder, described, expires_at) VALUES ('${LEASE_NAME}', ?, ?, ${now} + ?) ` +
    'ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, described = excluded.described, expires_at = excluded.expires_at ' +
    `WHERE ${LEASE_TABLE}.holder = excluded.holder OR ${LEASE_TABLE}.expires_at <= ${now}`
  );
}

/** Pushes the shared row's end forward (never back): each instance with shared counters renews it. */
function sharedClaimStatement(dialect: LeaseDialect): string {
  return (
    `INSERT INTO ${LEASE_TABLE} (name, holder, described, expires_at) VALUES ('${SHARED_NAME}', ?, ?, ${NOW_MS[dialect]} + ?) ` +
    'ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, described = excluded.described, expires_at = excluded.expires_at ' +
    `WHERE ${LEASE_TABLE}.expires_at < excluded.expires_at`
  );
}

function readStatement(dialect: LeaseDialect, name = LEASE_NAME): string {
  return `SELECT holder, described, expires_at - ${NOW_MS[dialect]} AS remaining_ms FROM ${LEASE_TABLE} WHERE name = '${name}'`;
}

/** The row of that name while it has not run out. */
async function liveRow(connection: LeaseConnection, name: string): Promise<LeaseRow | undefined> {
  const [row] = await connection.query(readStatement(connection.dialect, name), []);
  if (row === undefined || Number(row.remaining_ms) <= 0) return undefined;
  return { holder: String(row.holder), described: String(row.described), remainingMs: Number(row.remaining_ms) };
}

interface LeaseRow {
  holder: string;
  described: string;
  remainingMs: number;
}

/** Claims (or renews) and answers who holds the lease now: this holder when the claim won. */
async function claim(connection: LeaseConnection, holder: string, described: string, ttlMs: number): Promise<LeaseRow | undefined> {
  await connection.query(claimStatement(connection.dialect), [holder, described, ttlMs]);
  const [row] = await connection.query(readStatement(connection.dialect), []);
  if (row === undefined) return undefined;
  return { holder: String(row.holder), described: String(row.described), remainingMs: Number(row.remaining_ms) };
}

function refusal(row: LeaseRow, options: InstanceLeaseOptions): string {
  const seconds = Math.max(1, Math.ceil(row.remainingMs / 1000));
  return (
    `${options.where} (KEYWAY_DATABASE_URL) is in use by another Keyway instance (${row.described}), whose lease on it runs ${seconds} s more ` +
    'unless it renews it. Without shared counters a second instance would keep its own configuration and budget and rate-limit counters ' +
    'and drift apart from the first (budgets spent twice). Stop that instance first (a stopped instance gives its lease back at once, ' +
    "one that died holds it until the lease runs out, at most that instance's KEYWAY_INSTANCE_LEASE_MS), or run several instances with KEYWAY_REDIS_URL set on every one " +
    '(docs/deployment.md, "Several instances behind a load balancer").'
  );
}

function secondsLeft(row: LeaseRow): number {
  return Math.max(1, Math.ceil(row.remainingMs / 1000));
}

function besideSharedRefusal(row: LeaseRow, options: InstanceLeaseOptions): string {
  return (
    `${options.where} (KEYWAY_DATABASE_URL) is in use by Keyway instances that share their counters through Redis (the last to renew: ${row.described}), ` +
    `whose shared lease runs ${secondsLeft(row)} s more unless one of them renews it. This start has no KEYWAY_REDIS_URL: it would keep its own ` +
    'configuration and budget and rate-limit counters and never hear their changes (a key revoked on them would stay valid here); ' +
    'set the same KEYWAY_REDIS_URL (and KEYWAY_REDIS_PREFIX) on this instance as on them, or stop them first ' +
    '(docs/deployment.md, "One instance per database server without shared counters").'
  );
}

function besideAloneRefusal(row: LeaseRow, options: InstanceLeaseOptions): string {
  return (
    `${options.where} (KEYWAY_DATABASE_URL) is in use by a Keyway instance without shared counters (${row.described}), whose lease on it runs ` +
    `${secondsLeft(row)} s more unless it renews it. This start has KEYWAY_REDIS_URL set and that instance has not: it keeps its own ` +
    "configuration and counters and would never hear this instance's changes. Set the same KEYWAY_REDIS_URL on it and restart it, or stop it first " +
    '(docs/deployment.md, "One instance per database server without shared counters").'
  );
}

/**
 * Takes the instance lease on `connection`'s database and keeps renewing it, or throws an
 * InstanceLeaseError naming the instance that holds it. The connection is the lease's from here on.
 */
export async function holdInstanceLease(connection: LeaseConnection, options: InstanceLeaseOptions): Promise<InstanceLease> {
  const holder = `${hostname()}/${process.pid}/${randomUUID()}`;
  const described = options.described ?? `host ${hostname()}, pid ${process.pid}, started ${new Date().toISOString()}`;
  let row: LeaseRow | undefined;
  try {
    await createLeaseTable(connection);
    row = await claim(connection, holder, described, options.ttlMs);
  } catch (error) {
    await connection.close().catch(() => undefined);
    throw error;
  }
  if (row?.holder !== holder) {
    await connection.close().catch(() => undefined);
    throw new InstanceLeaseError(row === undefined ? `${options.where} (KEYWAY_DATABASE_URL) kept no instance lease row.` : refusal(row, options));
  }
  const shared = await liveRow(connection, SHARED_NAME).catch(async (error: unknown) => {
    await connection.close().catch(() => undefined);
    throw error;
  });
  if (shared !== undefined) {
    await connection.query(`DELETE FROM ${LEASE_TABLE} WHERE name = '${LEASE_NAME}' AND holder = ?`, [holder]).catch(() => undefined);
    await connection.close().catch(() => undefined);
    throw new InstanceLeaseError(besideSharedRefusal(shared, options));
  }
  // One line when the renewal changes state, not one every beat: the log says when it began and ended.
  let state: 'held' | 'lost' | 'failing' = 'held';
  const renew = async (): Promise<void> => {
    try {
      const now = await claim(connection, holder, described, options.ttlMs);
      if (now?.holder === holder) {
        if (state !== 'held') options.logger.warn({ database: options.where }, 'instance lease renewed again');
        state = 'held';
        return;
      }
      if (state !== 'lost') {
        // This instance stalled past its lease and another started meanwhile: two instances now serve
        // without shared counters. Neither is stopped (either may be serving requests); the operator is told.
        options.logger.error(
          { database: options.where, holder: now?.described },
          'instance lease lost to another Keyway instance: both now serve this database without shared counters; stop one, or set KEYWAY_REDIS_URL on both',
        );
      }
      state = 'lost';
    } catch (error) {
      if (state === 'held') {
        options.logger.warn(
          { database: options.where, error: error instanceof Error ? error.message : String(error) },
          'instance lease not renewed: the database did not answer; renewal goes on',
        );
        state = 'failing';
      }
    }
  };
  // Its row goes with it: an instance without shared counters may start at once, not after the lease runs out.
  return renewedLease(holder, connection, renewEvery(options.ttlMs, renew), () =>
    connection.query(`DELETE FROM ${LEASE_TABLE} WHERE name = '${LEASE_NAME}' AND holder = ?`, [holder]),
  );
}

/** A lease being renewed: its release (once) stops the renewals, lets `beforeClose` run, and closes the connection. */
function renewedLease(
  holder: string,
  connection: LeaseConnection,
  renewals: { stop(): Promise<void> },
  beforeClose: () => Promise<unknown> = async () => undefined,
): InstanceLease {
  let released = false;
  return {
    holder,
    async release() {
      if (released) return;
      released = true;
      await renewals.stop();
      await beforeClose().catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}

/** Runs `renew` every third of the lease's life, one at a time; `stop` ends them and waits for the last. */
function renewEvery(ttlMs: number, renew: () => Promise<void>): { stop(): Promise<void> } {
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(
    () => {
      renewing = renewing.then(renew);
    },
    Math.max(100, Math.floor(ttlMs / 3)),
  );
  // The lease keeps no process alive: the server, or the primary's workers, do.
  timer.unref?.();
  return {
    async stop() {
      clearInterval(timer);
      await renewing;
    },
  };
}

/**
 * For an instance with shared counters (KEYWAY_REDIS_URL): keeps the shared-counters row alive with the
 * other such instances, or throws an InstanceLeaseError naming the instance without shared counters that
 * holds the instance lease. Its release stops the renewals and leaves the row to the others: after the
 * last one stops, an instance without Redis starts once the row has run out (KEYWAY_INSTANCE_LEASE_MS).
 */
export async function holdSharedCountersLease(connection: LeaseConnection, options: InstanceLeaseOptions): Promise<InstanceLease> {
  const holder = `${hostname()}/${process.pid}/${randomUUID()}`;
  const described = options.described ?? `host ${hostname()}, pid ${process.pid}, started ${new Date().toISOString()}`;
  const claimShared = () => connection.query(sharedClaimStatement(connection.dialect), [holder, described, options.ttlMs]);
  let alone: LeaseRow | undefined;
  try {
    await createLeaseTable(connection);
    await claimShared();
    alone = await liveRow(connection, LEASE_NAME);
  } catch (error) {
    await connection.close().catch(() => undefined);
    throw error;
  }
  if (alone !== undefined) {
    await connection.close().catch(() => undefined);
    throw new InstanceLeaseError(besideAloneRefusal(alone, options));
  }
  let failing = false;
  const renew = async (): Promise<void> => {
    try {
      await claimShared();
      if (failing) options.logger.warn({ database: options.where }, 'shared-counters lease renewed again');
      failing = false;
    } catch (error) {
      if (!failing) {
        options.logger.warn(
          { database: options.where, error: error instanceof Error ? error.message : String(error) },
          'shared-counters lease not renewed: the database did not answer; renewal goes on',
        );
      }
      failing = true;
    }
  };
  return renewedLease(holder, connection, renewEvery(options.ttlMs, renew));
}
