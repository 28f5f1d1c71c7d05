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

/**
 * A client that reads a streamed answer until `marker` has arrived (or the stream ends), then leaves:
 * aborts its request and cancels the body. Answers what it read.
 */
export async function leaveStreamAfter(response: Response, abort: AbortController, marker: string): Promise<string> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let received = '';
  while (!received.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) break;
    received += decoder.decode(value, { stream: true });
  }
  abort.abort();
  await reader.cancel().catch(() => undefined);
  return received;
}
