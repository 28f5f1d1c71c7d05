// Plain-fetch helpers for the simulators' own tests: they read the wire exactly as sent, without any
// SDK or gateway code in between.

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Raw SSE events (the text between blank lines), in order. */
export async function readEvents(response: Response): Promise<string[]> {
  const text = await response.text();
  return splitEvents(text);
}

export function splitEvents(text: string): string[] {
  return text.split('\n\n').filter((event) => event.length > 0);
}

/** Parses `data: {json}` events; `[DONE]` and `event:` frames are left out. */
export function dataChunks(events: string[]): Array<Record<string, any>> {
  return events.filter((event) => event.startsWith('data: {')).map((event) => JSON.parse(event.slice('data: '.length)));
}

/** Reads a body until it ends or fails, keeping what arrived before a failure. */
export async function readUntilFailure(response: Response): Promise<{ text: string; failure: unknown }> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return { text, failure: undefined };
      text += decoder.decode(value, { stream: true });
    }
  } catch (failure) {
    return { text, failure };
  }
}

/** Whether a fetch failed at the connection level rather than with an HTTP answer. */
export async function fetchFailure(request: Promise<Response>): Promise<unknown> {
  try {
    await request;
    return undefined;
  } catch (failure) {
    return failure;
  }
}
