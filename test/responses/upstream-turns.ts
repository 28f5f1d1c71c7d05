// What an upstream was sent as a conversation, as a list of turns ({ role, text }), whichever API
// carried it: Chat Completions' `messages` (a translated provider) or the Responses API's `input` items
// (OpenAI serving /v1/responses natively). Tests that check what reached the provider compare these,
// so they hold on either path. Tool calls in a row are one assistant turn, as on the chat path.

type Json = Record<string, unknown>;

export interface Turn {
  role: string;
  text?: string;
}

function textOf(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  const texts = content.filter((part): part is Json => typeof part === 'object' && part !== null && typeof (part as Json).text === 'string');
  return texts.length === 0 ? undefined : texts.map((part) => String(part.text)).join('');
}

function turn(role: string, content: unknown): Turn {
  const text = textOf(content);
  return text === undefined ? { role } : { role, text };
}

function fromMessages(messages: Json[]): Turn[] {
  return messages.filter((message) => message.role !== 'system').map((message) => turn(String(message.role), message.content));
}

const CALLS = new Set(['function_call', 'custom_tool_call']);
const OUTPUTS = new Set(['function_call_output', 'custom_tool_call_output']);

function fromInput(items: Json[]): Turn[] {
  const turns: Turn[] = [];
  for (const item of items) {
    const type = String(item.type ?? 'message');
    if (type === 'message') turns.push(turn(String(item.role), item.content));
    else if (CALLS.has(type)) {
      if (turns.at(-1)?.role !== 'assistant' || turns.at(-1)?.text !== undefined) turns.push({ role: 'assistant' });
    } else if (OUTPUTS.has(type)) turns.push({ role: 'tool' });
  }
  return turns;
}

export function upstreamTurns(body: Json | undefined): Turn[] {
  if (body === undefined) return [];
  if (Array.isArray(body.messages)) return fromMessages(body.messages as Json[]);
  if (typeof body.input === 'string') return [{ role: 'user', text: body.input }];
  if (Array.isArray(body.input)) return fromInput(body.input as Json[]);
  return [];
}
