import { KeywayError } from '../../core/errors.ts';
import type { ChatMessage, ContentPart, ImagePart, ToolCall } from '../../core/spec/vocabulary.ts';

export interface CohereTextItem {
  type: 'text';
  text: string;
}

export type CohereUserContent = CohereTextItem | { type: 'image_url'; image_url: ImagePart['image_url'] };

export interface CohereToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type CohereMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string | CohereUserContent[] }
  | { role: 'assistant'; content?: string | CohereTextItem[]; tool_calls?: CohereToolCall[]; tool_plan?: string }
  | { role: 'tool'; tool_call_id: string; content: string | CohereTextItem[] };

/**
 * OpenAI messages → Cohere v2 messages. Cohere rejects a system turn anywhere but first ("system turn
 * must be the first in the list"), so the texts of every system and developer message are joined, in
 * order and a blank line apart, into one system message placed first.
 */
export function toCohereMessages(messages: ChatMessage[]): CohereMessage[] {
  const systemTexts: string[] = [];
  const turns: CohereMessage[] = [];
  messages.forEach((message, position) => {
    const param = `messages[${position}]`;
    switch (message.role) {
      case 'system':
      case 'developer':
        systemTexts.push(...textsOf(message.content, param));
        break;
      case 'user':
        turns.push({ role: 'user', content: orPlaceholder(userContent(message.content, param)) });
        break;
      case 'assistant':
        turns.push(assistantTurn(message, param));
        break;
      case 'tool':
        turns.push(toolTurn(message, param));
        break;
      default:
        throw unsupported(`${param}.role`, `Cohere has no equivalent of the '${message.role}' role; send tool results as 'tool' messages`);
    }
  });
  const system = systemTexts.filter((text) => text.length > 0).join('\n\n');
  return system.length > 0 ? [{ role: 'system', content: system }, ...turns] : turns;
}

function unsupported(param: string, detail: string): KeywayError {
  return new KeywayError('unsupported_feature', { detail }, { param });
}

/** The texts of a message that can only carry text (system, assistant, tool), one per text part. */
function textsOf(content: ChatMessage['content'], param: string): string[] {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return [content];
  return content.map((part, index) => {
    if (part.type === 'text' && typeof part.text === 'string') return part.text;
    throw unsupported(`${param}.content[${index}]`, `Cohere accepts only text in this message; got a '${part.type}' part`);
  });
}

/**
 * Several text parts go as Cohere's list of text items (its v2 messages take them, as LiteLLM sends
 * them), so none runs into the next ("SysA" and "SysB" are not "SysASysB"); one stays a string.
 */
function textContent(texts: string[]): string | CohereTextItem[] {
  const filled = texts.filter((text) => text.length > 0);
  if (filled.length <= 1) return filled[0] ?? '';
  return filled.map((text) => ({ type: 'text', text }));
}

function userContent(content: ChatMessage['content'], param: string): string | CohereUserContent[] {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((part, index) => userPart(part, `${param}.content[${index}]`));
}

/**
 * Cohere refuses a user turn with no text and no image ("message must be at least 1 token long"),
 * which OpenAI accepts: the turn keeps its place with the minimal text the Gemini and Anthropic
 * adapters use, rather than failing a request valid where the client wrote it.
 */
const PLACEHOLDER_USER_TEXT = '.';

function orPlaceholder(content: string | CohereUserContent[]): string | CohereUserContent[] {
  if (typeof content === 'string') return content.length > 0 ? content : PLACEHOLDER_USER_TEXT;
  const filled = content.some((part) => part.type !== 'text' || part.text.length > 0);
  return filled ? content : PLACEHOLDER_USER_TEXT;
}

function userPart(part: ContentPart, param: string): CohereUserContent {
  if (part.type === 'text' && typeof part.text === 'string') return { type: 'text', text: part.text };
  if (part.type === 'image_url') {
    const image = (part as ImagePart).image_url;
    return { type: 'image_url', image_url: image.detail === undefined ? { url: image.url } : { url: image.url, detail: image.detail } };
  }
  throw unsupported(param, `Cohere accepts text and image_url parts; got a '${part.type}' part`);
}

/**
 * Cohere refuses text content beside tool calls ("text content is not allowed when tool_calls are
 * provided … use 'tool_plan'"), so that text becomes the tool plan. A `tool_plan` Keyway returned
 * earlier and the client echoed back wins over the content.
 */
function assistantTurn(message: ChatMessage, param: string): CohereMessage {
  const texts = textsOf(message.content, param);
  const toolCalls = (message.tool_calls ?? []).map((call, position) => toCohereToolCall(call, `${param}.tool_calls[${position}]`));
  if (toolCalls.length === 0) return { role: 'assistant', content: textContent(texts) };
  // The tool plan is one string: the texts a blank line apart, as the system messages are joined.
  const plan = typeof message.tool_plan === 'string' && message.tool_plan.length > 0 ? message.tool_plan : texts.filter((text) => text.length > 0).join('\n\n');
  return plan.length > 0 ? { role: 'assistant', tool_calls: toolCalls, tool_plan: plan } : { role: 'assistant', tool_calls: toolCalls };
}

/** Arguments stay a JSON string: Cohere takes them in OpenAI's form. */
function toCohereToolCall(call: ToolCall, param: string): CohereToolCall {
  // OpenAI's custom tool calls carry free text (`custom.input`), which Cohere's calls do not.
  if (typeof call.function !== 'object' || call.function === null) throw unsupported(`${param}.type`, `${param}: Cohere takes only function tool calls`);
  return { id: call.id, type: 'function', function: { name: call.function.name, arguments: call.function.arguments } };
}

function toolTurn(message: ChatMessage, param: string): CohereMessage {
  if (typeof message.tool_call_id !== 'string' || message.tool_call_id.length === 0) {
    throw new KeywayError('missing_field', { param: `${param}.tool_call_id` }, { param: `${param}.tool_call_id` });
  }
  return { role: 'tool', tool_call_id: message.tool_call_id, content: textContent(textsOf(message.content, param)) };
}
