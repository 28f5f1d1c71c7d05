// The Responses stream grammar, as OpenAI documents it and its clients read it: a checker any test
// can run over the SSE text of a /v1/responses stream. It throws on the first departure.

type Json = Record<string, unknown>;

export interface ResponsesEvent {
  name: string | undefined;
  data: Json;
}

/** The `event:` name and parsed `data:` of each SSE event, in order. */
export function parseResponsesSse(text: string): ResponsesEvent[] {
  const events: ResponsesEvent[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let name: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    }
    if (data.length > 0) events.push({ name, data: JSON.parse(data.join('\n')) as Json });
  }
  return events;
}

function fail(message: string, event?: ResponsesEvent): never {
  throw new Error(`${message}${event === undefined ? '' : `: ${JSON.stringify(event.data).slice(0, 300)}`}`);
}

class Reader {
  private position = 0;
  constructor(private readonly events: ResponsesEvent[]) {}

  peek(): ResponsesEvent | undefined {
    return this.events[this.position];
  }

  take(type: string, fields: Json = {}): ResponsesEvent {
    const event = this.events[this.position++];
    if (event === undefined) fail(`the stream ended where ${type} was due`);
    if (event.data.type !== type) fail(`expected ${type}, got ${String(event.data.type)}`, event);
    for (const [name, value] of Object.entries(fields)) if (event.data[name] !== value) fail(`${type}.${name} should be ${JSON.stringify(value)}`, event);
    return event;
  }
}

export interface CheckedStream {
  /** The terminal event's type: response.completed, response.incomplete or response.failed. */
  terminal: string;
  response: Json;
  /** Each output item as its output_item.done carried it. */
  items: Json[];
  text: string;
}

/** A failure may cut an item short (OpenAI's own streams stop where they are): it is then never done. */
const cutShort = (reader: Reader): boolean => reader.peek()?.data.type === 'response.failed';

function checkItem(reader: Reader, outputIndex: number): { item: Json | undefined; text: string } {
  const added = reader.take('response.output_item.added', { output_index: outputIndex });
  const item = added.data.item as Json;
  const at = { item_id: item.id, output_index: outputIndex };
  if (typeof item.id !== 'string' || item.id === '') fail('an output item needs an id', added);
  let text = '';
  if (item.type === 'message') {
    reader.take('response.content_part.added', { ...at, content_index: 0 });
    for (
      let type = reader.peek()?.data.type;
      type === 'response.output_text.delta' || type === 'response.output_text.annotation.added';
      type = reader.peek()?.data.type
    ) {
      const event = reader.take(String(type), { ...at, content_index: 0 });
      if (type === 'response.output_text.delta') text += String(event.data.delta);
    }
    if (cutShort(reader)) return { item: undefined, text };
    reader.take('response.output_text.done', { ...at, content_index: 0, text });
    reader.take('response.content_part.done', { ...at, content_index: 0 });
  } else if (item.type === 'reasoning' && reader.peek()?.data.type === 'response.output_item.done') {
    // Reasoning without a summary (OpenAI's own, unless one is asked for): added, then done.
  } else if (item.type === 'reasoning') {
    reader.take('response.reasoning_summary_part.added', { ...at, summary_index: 0 });
    let summary = '';
    while (reader.peek()?.data.type === 'response.reasoning_summary_text.delta')
      summary += String(reader.take('response.reasoning_summary_text.delta', { ...at, summary_index: 0 }).data.delta);
    reader.take('response.reasoning_summary_text.done', { ...at, text: summary });
    reader.take('response.reasoning_summary_part.done', at);
  } else if (item.type === 'function_call') {
    if (typeof item.call_id !== 'string' || item.call_id === '') fail('a function_call needs a call_id', added);
    let argumentsText = '';
    while (reader.peek()?.data.type === 'response.function_call_arguments.delta')
      argumentsText += String(reader.take('response.function_call_arguments.delta', at).data.delta);
    if (cutShort(reader)) return { item: undefined, text };
    reader.take('response.function_call_arguments.done', { ...at, arguments: argumentsText });
  } else if (item.type === 'custom_tool_call') {
    if (typeof item.call_id !== 'string' || item.call_id === '') fail('a custom_tool_call needs a call_id', added);
    let input = '';
    while (reader.peek()?.data.type === 'response.custom_tool_call_input.delta')
      input += String(reader.take('response.custom_tool_call_input.delta', at).data.delta);
    reader.take('response.custom_tool_call_input.done', { ...at, input });
  } else if (item.type === 'web_search_call') {
    // A hosted search (OpenAI's own Responses API): its progress events, no content.
    for (const stage of ['in_progress', 'searching', 'completed']) reader.take(`response.web_search_call.${stage}`, at);
  } else {
    fail(`unexpected output item type ${String(item.type)}`, added);
  }
  const done = reader.take('response.output_item.done', { output_index: outputIndex });
  const finished = done.data.item as Json;
  if (finished.id !== item.id || finished.type !== item.type) fail('output_item.done names another item', done);
  return { item: finished, text };
}

/** Checks the whole grammar and answers what the stream said. */
export function checkResponsesStream(events: ResponsesEvent[]): CheckedStream {
  events.forEach((event, index) => {
    if (event.name !== event.data.type) fail(`event ${index}: the SSE event name ${String(event.name)} differs from its type`, event);
    if (event.data.sequence_number !== index) fail(`event ${index}: sequence_number ${String(event.data.sequence_number)}`, event);
  });
  const reader = new Reader(events);
  const created = reader.take('response.created').data.response as Json;
  if (created.status !== 'in_progress' || typeof created.id !== 'string') fail('response.created must carry an in_progress response');
  reader.take('response.in_progress');
  const items: Json[] = [];
  let text = '';
  while (reader.peek()?.data.type === 'response.output_item.added') {
    const checked = checkItem(reader, items.length);
    text += checked.text;
    if (checked.item === undefined) break;
    items.push(checked.item);
  }
  const terminal = reader.peek();
  if (terminal === undefined) fail('the stream ended without a terminal event');
  const type = String(terminal.data.type);
  if (!['response.completed', 'response.incomplete', 'response.failed'].includes(type)) fail('expected the terminal event', terminal);
  reader.take(type);
  const response = terminal.data.response as Json;
  if (response.id !== created.id) fail('the terminal response has another id', terminal);
  if (JSON.stringify(response.output) !== JSON.stringify(items)) fail('the terminal response output differs from the items streamed', terminal);
  if (type === 'response.failed') reader.take('error');
  if (reader.peek() !== undefined) fail('events after the terminal event', reader.peek());
  return { terminal: type, response, items, text };
}
