// node-postgres ships no types and @types/pg is not installed: just what bench/drivers.ts uses.
declare module 'pg' {
  interface QueryConfig {
    name?: string;
    text: string;
    values?: unknown[];
  }
  class Pool {
    constructor(options: { connectionString: string; max?: number });
    query(config: QueryConfig): Promise<{ rows: unknown[] }>;
    on(event: 'error', listener: (error: Error) => void): this;
    end(): Promise<void>;
  }
  const pg: { Pool: typeof Pool };
  export default pg;
}
