// The store contract's plugin SQL uses `?` placeholders (and `?1`, `?2` in usage roll-ups); PostgreSQL
// wants `$1`, `$2`. The rewrite skips string literals, quoted identifiers and comments, so a `?`
// inside a value is left alone.

/** `?` → `$n` in order; `?n` → `$n`. */
export function toPostgresPlaceholders(sql: string): string {
  let out = '';
  let next = 1;
  let index = 0;
  while (index < sql.length) {
    const character = sql[index] as string;
    if (character === "'" || character === '"') {
      const end = closingQuote(sql, index, character);
      out += sql.slice(index, end);
      index = end;
      continue;
    }
    if (character === '-' && sql[index + 1] === '-') {
      const end = sql.indexOf('\n', index);
      const stop = end === -1 ? sql.length : end;
      out += sql.slice(index, stop);
      index = stop;
      continue;
    }
    if (character === '?') {
      const digits = /^\d+/.exec(sql.slice(index + 1))?.[0];
      if (digits !== undefined) {
        out += `$${digits}`;
        index += 1 + digits.length;
      } else {
        out += `$${next++}`;
        index += 1;
      }
      continue;
    }
    out += character;
    index += 1;
  }
  return out;
}

/** The index after a quoted run starting at `start`; a doubled quote stays inside it. */
function closingQuote(sql: string, start: number, quote: string): number {
  let index = start + 1;
  while (index < sql.length) {
    if (sql[index] === quote) {
      if (sql[index + 1] === quote) {
        index += 2;
        continue;
      }
      return index + 1;
    }
    index += 1;
  }
  return sql.length;
}
