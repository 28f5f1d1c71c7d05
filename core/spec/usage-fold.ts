// Usage folds: roll-up tables a plugin declares as data, which a store keeps by summing each usage
// batch itself, before the rows reach SQL. A roll-up written as SQL (PluginUsageRollups) groups the
// batch's rows back out of usage_records, and SQLite groups by sorting: ~1.5 µs a row on the usage
// writer thread. Grouped here, in a Map, the same sums cost a fraction of that (bench/RESULTS.md).
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

/** One condition on one value, with SQL's meaning of NULL. */
function holds(condition: UsageCondition, actual: Value): boolean {
  if ('is' in condition) return (actual === null) === (condition.is === 'null');
  if (actual === null) return false;
  if ('in' in condition) return condition.in.includes(actual);
  const expected = condition.value;
  switch (condition.compare) {
    case '=':
      return actual === expected;
    case '<>':
      return actual !== expected;
    case '<':
      return actual < expected;
    case '<=':
      return actual <= expected;
    case '>':
      return actual > expected;
    default:
      return actual >= expected;
  }
}

function conditionsOf(table: UsageFoldTable): UsageCondition[] {
  return [...(table.where ?? []), ...table.sums.flatMap((sum) => sum.when ?? [])];
}

interface Group {
  /** The group's value of each key column (cut), and which of the masked conditions its rows meet. */
  values: Value[];
  mask: number;
  /** The row count, then each summed column's sum and its compensation. */
  totals: Float64Array;
}

/**
 * Compiles folds for rows given as value arrays in `columns` order. The batch is grouped once: by the
 * value of every column a key reads (a time cut to the longest prefix the keys take), and by which
 * conditions on other columns each row meets (a status ≥ 400 is one group whatever the status), with
 * each summed column added per group; each table then sums those few groups. Throws when a fold reads
 * a column the store does not have.
 */
export function compileUsageFolds(tables: readonly UsageFoldTable[], columns: readonly string[]): (rows: ReadonlyArray<Row>) => UsageFoldRows[] {
  const position = (name: string): number => {
    const index = columns.indexOf(name);
    if (index === -1) throw new Error(`a usage fold reads ${name}, which usage_records does not have here`);
    return index;
  };
  // Key columns, each cut to the longest prefix any key takes; whole when a key takes it whole or a condition reads it.
  const cuts = new Map<string, number | 'whole'>();
  for (const key of tables.flatMap((table) => table.keys)) {
    const current = cuts.get(key.from);
    cuts.set(key.from, key.length === undefined || current === 'whole' ? 'whole' : Math.max(current ?? 0, key.length));
  }
  const conditions = tables.flatMap(conditionsOf);
  for (const condition of conditions) if (cuts.has(condition.column)) cuts.set(condition.column, 'whole');
  const keyed = [...cuts].map(([name, cut]) => ({ name, index: position(name), length: cut === 'whole' ? undefined : cut }));
  const keyedAt = new Map(keyed.map((column, index) => [column.name, index]));
  // Conditions on the other columns become one bit each of a group's mask.
  const masked = [
    ...new Map(conditions.filter((condition) => !cuts.has(condition.column)).map((condition) => [JSON.stringify(condition), condition])).values(),
  ];
  if (masked.length > 30) throw new Error('usage folds test more than 30 distinct conditions on columns that are not keys');
  const maskedIndex = masked.map((condition) => position(condition.column));
  const bitOf = new Map(masked.map((condition, index) => [JSON.stringify(condition), 1 << index]));
  const summed = [...new Set(tables.flatMap((table) => table.sums.flatMap((sum) => (sum.of === 1 ? [] : [sum.of]))))];
  const summedIndex = summed.map(position);
  const summedAt = new Map(summed.map((name, index) => [name, 1 + 2 * index]));
  const width = 1 + 2 * summed.length;

  const meets = (group: Group, condition: UsageCondition): boolean => {
    const bit = bitOf.get(JSON.stringify(condition));
    return bit === undefined ? holds(condition, group.values[keyedAt.get(condition.column) as number] as Value) : (group.mask & bit) !== 0;
  };
  const meetsAll = (group: Group, list: readonly UsageCondition[] | undefined): boolean =>
    list === undefined || list.every((condition) => meets(group, condition));

  return (rows) => {
    // Level one. Each key value gets a small id per column and a group's key is its ids as characters:
    // a short key, where the values themselves made one of ~100 characters per row to hash.
    const ids = keyed.map(() => new Map<Value, number>());
    const masks = new Map<number, number>();
    const codes: number[] = new Array(keyed.length + 1).fill(0);
    // The previous row's value of each key column: rows in a row mostly share their account, key, model
    // and hour, and a comparison costs less than hashing the value again.
    const previous: Value[] = new Array(keyed.length).fill(undefined);
    const groups = new Map<string, Group>();
    // Once an id passes one character, every later key is written out (earlier keys cannot collide with those).
    let wide = false;
    for (const row of rows) {
      for (let column = 0; column < keyed.length; column++) {
        const { index, length } = keyed[column] as (typeof keyed)[number];
        const value = cut(row[index] as Value, length);
        if (value === previous[column]) continue;
        previous[column] = value;
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
      for (let bit = 0; bit < masked.length; bit++) if (holds(masked[bit] as UsageCondition, row[maskedIndex[bit] as number] as Value)) mask |= 1 << bit;
      let maskId = masks.get(mask);
      if (maskId === undefined) {
        maskId = masks.size;
        masks.set(mask, maskId);
      }
      codes[keyed.length] = maskId;
      const key = wide ? codes.join(',') : String.fromCharCode(...codes);
      let group = groups.get(key);
      if (group === undefined) {
        group = { values: keyed.map(({ index, length }) => cut(row[index] as Value, length)), mask, totals: new Float64Array(width) };
        groups.set(key, group);
      }
      const totals = group.totals;
      totals[0] = (totals[0] as number) + 1;
      for (let index = 0; index < summedIndex.length; index++) {
        const value = row[summedIndex[index] as number];
        addTo(totals, 1 + 2 * index, typeof value === 'number' ? value : 0);
      }
    }
    // Level two: each table sums the groups.
    return tables.map((table) => {
      const buckets = new Map<string, { keys: Array<string | number>; totals: Float64Array }>();
      for (const group of groups.values()) {
        if (!meetsAll(group, table.where)) continue;
        const keys = table.keys.map((key) => cut(group.values[keyedAt.get(key.from) as number] as Value, key.length) ?? '');
        const bucketKey = keys.map((key) => `${typeof key === 'number' ? 'n' : 's'}${key}`).join('\u0000');
        let bucket = buckets.get(bucketKey);
        if (bucket === undefined) {
          bucket = { keys, totals: new Float64Array(2 * table.sums.length) };
          buckets.set(bucketKey, bucket);
        }
        for (const [index, sum] of table.sums.entries()) {
          if (!meetsAll(group, sum.when)) continue;
          const at = sum.of === 1 ? 0 : (summedAt.get(sum.of) as number);
          addTo(bucket.totals, 2 * index, at === 0 ? (group.totals[0] as number) : (group.totals[at] as number) + (group.totals[at + 1] as number));
        }
      }
      return {
        table,
        rows: [...buckets.values()].map((bucket) => [
          ...bucket.keys,
          ...table.sums.map((_, index) => (bucket.totals[2 * index] as number) + (bucket.totals[2 * index + 1] as number)),
        ]),
      };
    });
  };
}
