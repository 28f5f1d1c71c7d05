// Reading an SSE body in tests: the `data:` payloads in order (one optional space after the colon, as
// the SSE format says; CRLF or LF line ends).

export function ssePayloads(text: string): string[] {
  return text
    .split(/\r?\n\r?\n/)
    .map((event) =>
      event
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => (line.startsWith('data: ') ? line.slice(6) : line.slice(5)))
        .join('\n'),
    )
    .filter((data) => data.length > 0);
}
