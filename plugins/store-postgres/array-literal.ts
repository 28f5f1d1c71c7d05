// The usage INSERT passes each column as one array parameter, unnested into rows (store.ts). Handed
// JavaScript arrays, Bun.SQL writes their PostgreSQL array literals element by element in JavaScript
// on the gateway's thread: about 3 µs a usage row in a CPU profile under load (session 5), more than
// the rest of the write. Built here as one text per column (numbers joined as they are, strings
// quoted once with a single regular expression) the same literal costs a fraction of that, and the
// server parses it as the column's array type.

const NEEDS_ESCAPE = /["\\]/g;

/** A PostgreSQL array literal (`{1,2,NULL}`, `{"a","b \"c\""}`) of one column's values. */
export function arrayLiteral(values: ReadonlyArray<string | number | null>): string {
  let literal = '{';
  for (let index = 0; index < values.length; index++) {
    if (index > 0) literal += ',';
    const value = values[index];
    if (value === null || value === undefined) literal += 'NULL';
    else if (typeof value === 'number') literal += numberElement(value);
    // Most texts (ids, model names, timestamps) hold neither character: two native scans instead of a regular expression.
    else if (value.indexOf('"') === -1 && value.indexOf('\\') === -1) literal += `"${value}"`;
    else literal += `"${value.replace(NEEDS_ESCAPE, '\\$&')}"`;
  }
  return `${literal}}`;
}

/** A finite number as PostgreSQL reads it (`1e-7` and `12.5` alike); anything else is a caller's bug. */
function numberElement(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`a usage column holds ${value}, which PostgreSQL cannot store as a number`);
  return String(value);
}
