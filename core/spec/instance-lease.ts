// What a store plugin hands the instance lease (core/process/instance-lease.ts): a connection of its
// own to the database, running one statement with `?` placeholders at a time. The lease's SQL is the
// same in both dialects but for the database clock's expression.

export type LeaseDialect = 'sqlite' | 'postgres';

/** The lease's one-row table: bookkeeping, like the migrations', which copy-store neither copies nor counts. */
export const LEASE_TABLE = 'keyway_instance_lease';

/** A connection to the database the lease lives in: one statement, its rows. */
export interface LeaseConnection {
  readonly dialect: LeaseDialect;
  query(sql: string, parameters: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}
