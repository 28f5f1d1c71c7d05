// Lists of notify targets sealed at rest: alert rules' targets, the compliance and reconciliation
// `notify` lists, key rotation's `notification_webhooks`. A Slack incoming-webhook URL, or a webhook URL
// with a token in it, is its own credential, so a plugin's row keeps the list only sealed by the crypto
// backend that seals provider keys (`services.secrets`: the same master key, versions and rotation),
// the whole list as one value bound to its row, in three columns (ciphertext, backend, key version).
// An empty list is stored as none (NULL columns): nothing to open. Opened lists are kept in memory by
// row, so a list is decrypted once per stored value, not per firing or delivery. A list an earlier
// release kept in plaintext (a JSON column, or a field of one) is read as it is and sealed once, at start.

import { tableCiphertextHolder, type CiphertextTable } from '../../core/spec/ciphertext-table.ts';
import type { CiphertextHolder } from '../../core/spec/crypto-backend.ts';
import type { JobDefinition } from '../../core/spec/plugin.ts';
import type { Services } from '../../core/spec/services.ts';

type Row = Record<string, unknown>;

/** Rows sealed per page by the start's pass: bounded memory on a large table. */
const PAGE = 200;

/**
 * Where a plugin's table keeps a sealed list (the holder's table, `name` being `<plugin>:<table>`, with
 * the key version recorded), and where an earlier release kept it in plaintext.
 */
export interface SealedListPlace extends CiphertextTable {
  keyVersionColumn: string;
  /**
   * The JSON column an earlier release kept the list in, and the field of the object it holds (none:
   * the column is the list itself). Absent when no earlier release kept one in this table.
   */
  plaintext?: { column: string; field?: string };
  /** What the log calls these lists ("alert targets"). */
  what: string;
}

/** The three columns a list is written to; all null for an empty list. */
export interface SealedListColumns {
  ciphertext: string | null;
  backend: string | null;
  keyVersion: number | null;
}

export interface OpenedList {
  targets: string[];
  /** Its sealed list did not open: no targets until it is set again. */
  unreadable: boolean;
}

/** The strings of a non-empty JSON list, else undefined. */
export function targetListOf(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.length > 0 ? value.filter((target): target is string => typeof target === 'string') : undefined;
}

function parsed(text: unknown): unknown {
  try {
    return JSON.parse(String(text)) as unknown;
  } catch {
    return undefined;
  }
}

function textOrUndefined(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

/**
 * After plaintext lists were sealed: has the store drop the copies from its files (SQLite: WAL
 * checkpoint and VACUUM; PostgreSQL: VACUUM of the tables) and logs it. A store too busy now leaves
 * them to its next checkpoint: logged, the lists are sealed either way.
 */
export async function dropPlaintextCopies(services: Pick<Services, 'store' | 'logger'>, tables: readonly string[], what: string, count: number): Promise<void> {
  services.logger.info({ sealed: count, tables }, `${what} an earlier release stored in plaintext are now sealed by the crypto backend`);
  await services.store.reclaimReplacedRows?.(tables, { rebuild: true })?.catch((error: unknown) => {
    services.logger.warn(
      { error: error instanceof Error ? error.message : String(error) },
      `the plaintext ${what} just sealed are left in the database files until the next WAL checkpoint and VACUUM`,
    );
  });
}

/** Runs `work` until it once succeeds; every later call answers that success (a failure is tried again at the next call). */
export function untilDone(work: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () =>
    (done ??= work().catch((error: unknown) => {
      done = undefined;
      throw error;
    }));
}

export class SealedLists {
  /** Opened lists by binding, with the ciphertext each was opened from: a stored value is opened once. */
  private opened = new Map<string, { ciphertext: string; targets: string[] }>();

  constructor(
    private readonly services: Services,
    readonly place: SealedListPlace,
  ) {}

  /** The sealed lists for master-key rotation and the start's check of the versions in use. */
  holder(): CiphertextHolder {
    return tableCiphertextHolder(this.services, this.place);
  }

  /** Seals a row's list (`row` holds the binding columns and the id); none for an empty list. */
  async seal(row: Row, targets: readonly string[]): Promise<SealedListColumns> {
    if (targets.length === 0) return { ciphertext: null, backend: null, keyVersion: null };
    const binding = this.place.binding(row);
    const sealed = await this.services.secrets.seal(JSON.stringify(targets), binding);
    this.opened.set(binding, { ciphertext: sealed.ciphertext, targets: [...targets] });
    return { ciphertext: sealed.ciphertext, backend: sealed.backend, keyVersion: sealed.keyVersion };
  }

  /** The plaintext list a row still holds (an earlier release wrote it), or undefined. */
  plaintextOf(row: Row): string[] | undefined {
    const plaintext = this.place.plaintext;
    if (plaintext === undefined) return undefined;
    const value = parsed(row[plaintext.column]);
    if (plaintext.field === undefined) return targetListOf(value);
    return value !== null && typeof value === 'object' ? targetListOf((value as Row)[plaintext.field]) : undefined;
  }

  /**
   * A row's list: its plaintext list while it has one (a row no start has sealed yet, or one an
   * earlier release changed since), else its sealed list opened, from memory when this stored value
   * was opened before. A list that does not open (sealed under a master key version this instance
   * lacks, or altered) gives no targets and is logged, so the other rows still load.
   */
  async open(row: Row): Promise<OpenedList> {
    const plaintext = this.plaintextOf(row);
    if (plaintext !== undefined) return { targets: plaintext, unreadable: false };
    const ciphertext = textOrUndefined(row[this.place.ciphertextColumn]);
    const backend = textOrUndefined(row[this.place.backendColumn]);
    if (ciphertext === undefined || backend === undefined) return { targets: [], unreadable: false };
    const binding = this.place.binding(row);
    const known = this.opened.get(binding);
    if (known?.ciphertext === ciphertext) return { targets: known.targets, unreadable: false };
    try {
      // Not remembered for log redaction as a secret is: the list's JSON never appears whole, and the
      // targets are masked in answers and cut out of delivery errors already.
      const sealer = this.services.secrets;
      const text =
        sealer.openContent === undefined ? await sealer.open({ ciphertext, backend }, binding) : await sealer.openContent({ ciphertext, backend }, binding);
      const targets = targetListOf(JSON.parse(text)) ?? [];
      this.opened.set(binding, { ciphertext, targets });
      return { targets, unreadable: false };
    } catch (error) {
      const message = this.services.errors.redact(error instanceof Error ? error.message : String(error));
      this.services.logger.error(
        { holder: this.place.name, id: String(row[this.place.idColumn]), error: message },
        `sealed ${this.place.what} could not be opened: none are used until they are set again`,
      );
      return { targets: [], unreadable: true };
    }
  }

  /** Every row's list (a snapshot's load): only the rows given stay remembered, a deleted one is forgotten. */
  async openAll(rows: readonly Row[]): Promise<OpenedList[]> {
    const lists = await Promise.all(rows.map((row) => this.open(row)));
    const kept = new Set(rows.map((row) => this.place.binding(row)));
    for (const binding of this.opened.keys()) if (!kept.has(binding)) this.opened.delete(binding);
    return lists;
  }

  /** Opens every sealed list stored now into memory, so the first event after a start decrypts none. */
  async openStored(): Promise<void> {
    const { table, idColumn, ciphertextColumn, backendColumn } = this.place;
    const columns = [...new Set([idColumn, ...this.place.bindingColumns, ciphertextColumn, backendColumn])].join(', ');
    await this.openAll(await this.services.store.query(`SELECT ${columns} FROM ${table} WHERE ${backendColumn} IS NOT NULL`));
  }

  /**
   * Once per process, a second after the start (every instance: each opens into its own memory):
   * the plaintext lists are sealed, then every stored list opened.
   */
  startJob(name: string): JobDefinition {
    return {
      name,
      intervalMs: 1_000,
      run: untilDone(async () => {
        await this.sealPlaintext();
        await this.openStored();
      }),
    };
  }

  /** What the plaintext column holds once its list is sealed: the object without the field, or `[]`. */
  private scrubbed(text: unknown): string {
    const field = this.place.plaintext?.field;
    if (field === undefined) return '[]';
    const { [field]: _removed, ...rest } = (parsed(text) ?? {}) as Row;
    return JSON.stringify(rest);
  }

  /**
   * Seals every list still in plaintext (rows from before sealing, or written by an earlier release
   * since), each only if its row still holds what was read, then drops the plaintext copies from the
   * store's files. Answers how many.
   */
  async sealPlaintext(): Promise<number> {
    const plaintext = this.place.plaintext;
    if (plaintext === undefined) return 0;
    const { table, idColumn } = this.place;
    // JSON.stringify writes no space: a non-empty list of strings starts `["`, as the field's value or the column.
    const pattern = plaintext.field === undefined ? '["%' : `%"${plaintext.field}":["%`;
    const columns = [...new Set([idColumn, ...this.place.bindingColumns, plaintext.column])].join(', ');
    let sealed = 0;
    let cursor = '';
    for (;;) {
      const rows = await this.services.store.query(
        `SELECT ${columns} FROM ${table} WHERE ${plaintext.column} LIKE ? AND ${idColumn} > ? ORDER BY ${idColumn} LIMIT ?`,
        [pattern, cursor, PAGE],
      );
      for (const row of rows) if (await this.sealRow(row)) sealed += 1;
      if (rows.length < PAGE) break;
      cursor = String(rows.at(-1)?.[idColumn]);
    }
    if (sealed > 0) await dropPlaintextCopies(this.services, [table], this.place.what, sealed);
    return sealed;
  }

  private async sealRow(row: Row): Promise<boolean> {
    const targets = this.plaintextOf(row);
    const place = this.place;
    const column = place.plaintext?.column;
    if (targets === undefined || column === undefined) return false;
    const sealed = await this.seal(row, targets);
    const updated = await this.services.store.query(
      `UPDATE ${place.table} SET ${column} = ?, ${place.ciphertextColumn} = ?, ${place.backendColumn} = ?, ${place.keyVersionColumn} = ?
       WHERE ${place.idColumn} = ? AND ${column} = ? RETURNING ${place.idColumn}`,
      [this.scrubbed(row[column]), sealed.ciphertext, sealed.backend, sealed.keyVersion, row[place.idColumn], row[column]],
    );
    return updated.length > 0;
  }
}
