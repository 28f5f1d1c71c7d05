// Usage folds: roll-up tables a plugin declares as data, which a store keeps by summing each usage
// batch itself, before the rows reach SQL. A roll-up written as SQL (PluginUsageRollups) groups the
// batch's rows back out of usage_records, and SQLite groups by sorting: ~1.5 µs a row on the usage
// writer thread. Grouped here, in Maps, the same sums cost a third to a half of that when rows share
// their buckets, as a busy gateway's do, and ~40 % less when rows spread over hundreds of buckets
// (bench/RESULTS.md, 2026-12-06 session 4).
// Declared as data, not code, so a store can fold on a thread of its own: functions do not cross.

/**
 * A test on one usage_records column of a row, with SQL's meaning: a NULL value passes `null` only
 * (every comparison with NULL is false).
 */
export type UsageCondition =
  | { column: string; is: 'null' | 'not-null' }
  | { column: string; compare: '=' | '<>' | '<' | '<=' | '>' | '>='; value: number | string }
  | { column: string; in: ReadonlyArray<number | string> };

/** One key column of a roll-up table: a usage column's value (NULL kept as ''), cut to its first `length` characters when given. */
export interface UsageFoldKey {
  column: string;
  from: string;
  length?: number;
}

/** One summed column: the usage column `of` (or 1, to count rows), over the rows that pass `when` (the others add 0). */
export interface UsageFoldSum {
  column: string;
  of: string | 1;
  when?: readonly UsageCondition[];
}

/**
 * A roll-up table kept in step with usage_records: for each distinct key among a batch's rows that
 * pass `where`, the store adds the batch's sums to the table's row of that key (0 when new), in the
 * batch's transaction. `keys` are the table's primary key, in its order.
 */
export interface UsageFoldTable {
  table: string;
  where?: readonly UsageCondition[];
  keys: readonly UsageFoldKey[];
  sums: readonly UsageFoldSum[];
}

/** A plugin's folds: dialect-free, run by every store that takes them (Store.setUsageFolds). */
export type PluginUsageFolds = readonly UsageFoldTable[];

export interface UsageFold {
  plugin: string;
  tables: readonly UsageFoldTable[];
}

/** What a batch adds to one table: one row per key, the key values then the sums, in declared order. */
export interface UsageFoldRows {
  table: UsageFoldTable;
  rows: Array<Array<string | number>>;
}

type Value = string | number | null;
type Row = ReadonlyArray<unknown>;

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Throws unless every table and column is a plain SQL identifier, so a store can write them into SQL as they are. */
export function validateUsageFoldTables(tables: unknown): asserts tables is readonly UsageFoldTable[] {
  if (!Array.isArray(tables)) throw new Error('usageFolds must be an array of tables');
  for (const table of tables as UsageFoldTable[]) {
    if (typeof table?.table !== 'string' || !IDENTIFIER.test(table.table)) throw new Error('each usage fold needs a table name (a plain identifier)');
    if (!Array.isArray(table.keys) || table.keys.length === 0 || !Array.isArray(table.sums) || table.sums.length === 0)
      throw new Error(`usage fold ${table.table} needs keys and sums`);
    const conditions = [...(table.where ?? []), ...table.sums.flatMap((sum) => sum.when ?? [])];
    const names = [
      ...table.keys.flatMap((key) => [key.column, key.from]),
      ...table.sums.flatMap((sum) => (sum.of === 1 ? [sum.column] : [sum.column, sum.of])),
      ...conditions.map((condition) => condition.column),
    ];
    const bad = names.find((name) => typeof name !== 'string' || !IDENTIFIER.test(name));
    if (bad !== undefined) throw new Error(`usage fold ${table.table} names a column that is not a plain identifier: ${String(bad)}`);
  }
}

/**
 * Adds `value` to the sum at `totals[at]`, with Neumaier's compensation kept at `totals[at + 1]`, as
 * SQLite's SUM() adds REAL values: a batch's sums match SQL's to the last bit as nearly as the order allows.
 */
function addTo(totals: Float64Array, at: number, value: number): void {
  const sum = totals[at] as number;
  const total = sum + value;
  totals[at + 1] = (totals[at + 1] as number) + (Math.abs(sum) > Math.abs(value) ? sum - total + value : value - total + sum);
  totals[at] = total;
}

function cut(value: Value, length: number | undefined): Value {
  return length !== undefined && typeof value === 'string' ? value.slice(0, length) : value;
}

/** A test of one value against one condition, with SQL's meaning of NULL; decided once, so a row's test is one comparison. */
function compileCondition(condition: UsageCondition): (actual: Value) => boolean {
  if ('is' in condition) return condition.is === 'null' ? (actual) => actual === null : (actual) => actual !== null;
  if ('in' in condition) {
    const allowed = condition.in;
    return (actual) => actual !== null && allowed.includes(actual);
  }
  const expected = condition.value;
  switch (condition.compare) {
    case '=':
      return (actual) => actual !== null && actual === expected;
    case '<>':
      return (actual) => actual !== null && actual !== expected;
    case '<':
      return (actual) => actual !== null && actual < expected;
    case '<=':
      return (actual) => actual !== null && actual <= expected;
    case '>':
      return (actual) => actual !== null && actual > expected;
    default:
      return (actual) => actual !== null && actual >= expected;
  }
}

function conditionsOf(table: UsageFoldTable): UsageCondition[] {
  return [...(table.where ?? []), ...table.sums.flatMap((sum) => sum.when ?? [])];
}

interface Group {
  /** The id of each keyed value (its position in `keyed`), for the tables' bucket keys. */
  codes: number[];
  /** The group's value of each keyed column, and which conditions its rows meet (one bit each). */
  values: Value[];
  mask: number;
  /** The row count, then each summed column's sum and its compensation. */
  totals: Float64Array;
}

/** A key built from small ids: one character each, or written out once an id passes one character. */
function idKey(codes: readonly number[], wide: boolean): string {
  return wide ? codes.join(',') : String.fromCharCode(...codes);
}

/**
 * Compiles folds for rows given as value arrays in `columns` order. The batch is grouped once: by the
 * value of every column a key reads (once per cut it takes: the hour and the day of `created_at`), and
 * by which conditions on other columns each row meets (a status ≥ 400 is one group whatever the
 * status), with each summed column added per group; each table then sums those groups by its own key.
 * Each distinct value gets a small id per column, so every key is a few characters to hash. Throws when
 * a fold reads a column the store does not have.
 */
export function compileUsageFolds(
  tables: readonly UsageFoldTable[],
  columns: readonly string[],
): (rows: ReadonlyArray<Row>, pause?: () => void) => UsageFoldRows[] {
  const position = (name: string): number => {
    const index = columns.indexOf(name);
    if (index === -1) throw new Error(`a usage fold reads ${name}, which usage_records does not have here`);
    return index;
  };
  const conditions = tables.flatMap(conditionsOf);
  const keyColumns = new Set(tables.flatMap((table) => table.keys.map((key) => key.from)));
  // Each (column, cut) a key takes, NULL as ''; and each key column a condition reads, whole and with its NULL.
  const keyedNames = new Map<string, { index: number; length: number | undefined; key: boolean }>();
  const keyedName = (name: string, length: number | undefined, key: boolean): string => `${name}/${length ?? ''}/${key ? 'key' : 'value'}`;
  for (const { from, length } of tables.flatMap((table) => table.keys))
    keyedNames.set(keyedName(from, length, true), { index: position(from), length, key: true });
  for (const { column } of conditions)
    if (keyColumns.has(column)) keyedNames.set(keyedName(column, undefined, false), { index: position(column), length: undefined, key: false });
  const keyed = [...keyedNames.values()];
  const keyedAt = new Map([...keyedNames.keys()].map((name, index) => [name, index]));
  // Each distinct condition is one bit of a group's mask: those on other columns are tested per row
  // (and group the rows), those on key columns once per group, from its values.
  const distinct = [...new Map(conditions.map((condition) => [JSON.stringify(condition), condition])).values()];
  if (distinct.length > 30) throw new Error('usage folds test more than 30 distinct conditions');
  const bitOf = new Map(distinct.map((condition, index) => [JSON.stringify(condition), 1 << index]));
  const bitOfCondition = (condition: UsageCondition): number => bitOf.get(JSON.stringify(condition)) as number;
  const masked = distinct.filter((condition) => !keyColumns.has(condition.column));
  const maskedIndex = masked.map((condition) => position(condition.column));
  const maskedBits = masked.map(bitOfCondition);
  const tests = masked.map(compileCondition);
  const onKeys = distinct
    .filter((condition) => keyColumns.has(condition.column))
    .map((condition) => ({
      test: compileCondition(condition),
      at: keyedAt.get(keyedName(condition.column, undefined, false)) as number,
      bit: bitOfCondition(condition),
    }));
  const summed = [...new Set(tables.flatMap((table) => table.sums.flatMap((sum) => (sum.of === 1 ? [] : [sum.of]))))];
  const summedIndex = summed.map(position);
  const summedAt = new Map(summed.map((name, index) => [name, 1 + 2 * index]));
  const width = 1 + 2 * summed.length;

  /** The bits a group's mask must have to meet every condition of the list. */
  const required = (list: readonly UsageCondition[] | undefined): number => (list ?? []).reduce((bits, condition) => bits | bitOfCondition(condition), 0);
  const plans = tables.map((table) => ({
    table,
    where: required(table.where),
    keys: table.keys.map((key) => keyedAt.get(keyedName(key.from, key.length, true)) as number),
    sums: table.sums.map((sum) => ({ when: required(sum.when), at: sum.of === 1 ? 0 : (summedAt.get(sum.of) as number) })),
  }));

  // `pause` runs every 256 rows: a store's writer thread yields its core there (plugins/store-sqlite/usage-writer.ts).
  return (rows, pause) => {
    const ids = keyed.map(() => new Map<Value, number>());
    const masks = new Map<number, number>();
    const codes: number[] = new Array(keyed.length + 1).fill(0);
    // The previous row's value of each keyed column: rows in a row mostly share their account, key,
    // model and hour, and a comparison costs less than hashing the value again.
    const previous: Value[] = new Array(keyed.length).fill(undefined);
    const groups = new Map<string, Group>();
    // Once an id passes one character, every later key is written out (earlier keys cannot collide with those).
    let wide = false;
    let previousMask = -1;
    let group: Group | undefined;
    for (let position = 0; position < rows.length; position++) {
      if ((position & 255) === 255) pause?.();
      const row = rows[position] as Row;
      let changed = false;
      for (let column = 0; column < keyed.length; column++) {
        const { index, length, key } = keyed[column] as (typeof keyed)[number];
        const value = key ? (cut(row[index] as Value, length) ?? '') : (row[index] as Value);
        if (value === previous[column]) continue;
        previous[column] = value;
        changed = true;
        const known = ids[column] as Map<Value, number>;
        let id = known.get(value);
        if (id === undefined) {
          id = known.size;
          known.set(value, id);
        }
        codes[column] = id;
        wide ||= id > 0xffff;
      }
      let mask = 0;
      for (let index = 0; index < tests.length; index++)
        if ((tests[index] as (value: Value) => boolean)(row[maskedIndex[index] as number] as Value)) mask |= maskedBits[index] as number;
      // The previous row's group again when nothing that groups changed: no key to build or look up.
      if (changed || mask !== previousMask || group === undefined) {
        let maskId = masks.get(mask);
        if (maskId === undefined) {
          maskId = masks.size;
          masks.set(mask, maskId);
        }
        codes[keyed.length] = maskId;
        previousMask = mask;
        const key = idKey(codes, wide);
        group = groups.get(key);
        if (group === undefined) {
          const values = keyed.map(({ index, length, key }) => (key ? (cut(row[index] as Value, length) ?? '') : (row[index] as Value)));
          let groupMask = mask;
          for (const { test, at, bit } of onKeys) if (test(values[at] as Value)) groupMask |= bit;
          group = { codes: codes.slice(0, keyed.length), values, mask: groupMask, totals: new Float64Array(width) };
          groups.set(key, group);
        }
      }
      const totals = group.totals;
      totals[0] = (totals[0] as number) + 1;
      for (let index = 0; index < summedIndex.length; index++) {
        const value = row[summedIndex[index] as number];
        addTo(totals, 1 + 2 * index, typeof value === 'number' ? value : 0);
      }
    }
    // Level two: each table sums the groups by its own key (NULL kept as '').
    return plans.map((plan) => {
      const buckets = new Map<string, { keys: Array<string | number>; totals: Float64Array }>();
      const bucketCodes: number[] = new Array(plan.keys.length).fill(0);
      for (const entry of groups.values()) {
        if ((entry.mask & plan.where) !== plan.where) continue;
        for (let key = 0; key < plan.keys.length; key++) bucketCodes[key] = entry.codes[plan.keys[key] as number] as number;
        const bucketKey = idKey(bucketCodes, wide);
        let bucket = buckets.get(bucketKey);
        if (bucket === undefined) {
          bucket = { keys: plan.keys.map((at) => entry.values[at] as string | number), totals: new Float64Array(2 * plan.sums.length) };
          buckets.set(bucketKey, bucket);
        }
        for (let index = 0; index < plan.sums.length; index++) {
          const { when, at } = plan.sums[index] as (typeof plan.sums)[number];
          if ((entry.mask & when) !== when) continue;
          addTo(bucket.totals, 2 * index, at === 0 ? (entry.totals[0] as number) : (entry.totals[at] as number) + (entry.totals[at + 1] as number));
        }
      }
      return {
        table: plan.table,
        rows: [...buckets.values()].map((bucket) => [
          ...bucket.keys,
          ...plan.sums.map((_, index) => (bucket.totals[2 * index] as number) + (bucket.totals[2 * index + 1] as number)),
        ]),
      };
    });
  };
}
