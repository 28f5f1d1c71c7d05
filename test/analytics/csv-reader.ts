// A strict RFC 4180 reader for the tests: CRLF between records, quoted fields with doubled quotes.
// It throws on anything RFC 4180 does not allow (a bare LF, a quote inside an unquoted field, text
// after a closing quote), so a test that parses an export also checks its framing.

export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let index = 0;
  if (!text.endsWith('\r\n')) throw new Error('the last record does not end with CRLF');
  while (index < text.length) {
    let field = '';
    if (text[index] === '"') {
      index++;
      while (true) {
        const quote = text.indexOf('"', index);
        if (quote === -1) throw new Error('an unterminated quoted field');
        field += text.slice(index, quote);
        if (text[quote + 1] === '"') {
          field += '"';
          index = quote + 2;
          continue;
        }
        index = quote + 1;
        break;
      }
    } else {
      while (index < text.length && text[index] !== ',' && text[index] !== '\r') {
        if (text[index] === '"' || text[index] === '\n') throw new Error(`a bare ${JSON.stringify(text[index])} in an unquoted field at ${index}`);
        field += text[index];
        index++;
      }
    }
    record.push(field);
    if (text[index] === ',') {
      index++;
    } else if (text.startsWith('\r\n', index)) {
      records.push(record);
      record = [];
      index += 2;
    } else {
      throw new Error(`unexpected ${JSON.stringify(text.slice(index, index + 10))} after a field at ${index}`);
    }
  }
  const width = records[0]?.length;
  for (const [number, cells] of records.entries())
    if (cells.length !== width) throw new Error(`record ${number} has ${cells.length} fields, the header ${width}`);
  return records;
}
