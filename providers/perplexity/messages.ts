import type { ChatMessage, ContentPart } from '../../core/spec/vocabulary.ts';

/** Stands in for the user turn Sonar requires before an opening assistant message (a greeting). */
export const PLACEHOLDER_USER_TEXT = '.';

/**
 * Reshapes an OpenAI conversation into what Sonar accepts. Perplexity answers 400 "After the
 * (optional) system message(s), user and assistant roles should be alternating" otherwise, where
 * OpenAI accepts any order. The rules:
 * - system and developer messages before the first other message stay, as `system`;
 * - a later one is merged into the next user turn (or becomes a user turn at the end);
 * - adjacent user turns are joined with a blank line, adjacent assistant turns likewise (tool calls
 *   concatenated);
 * - `tool` messages are kept only directly after an assistant turn with tool calls (or after another
 *   such tool message); elsewhere they become user text. A tool result block takes the user's place
 *   in the alternation, so a user message right after it is merged into the last tool message.
 */
export function normalizePerplexityMessages(messages: readonly ChatMessage[]): ChatMessage[] {
  let position = 0;
  const leading: ChatMessage[] = [];
  for (; position < messages.length && isSystemLike(messages[position] as ChatMessage); position++) {
    leading.push({ ...(messages[position] as ChatMessage), role: 'system' });
  }
  const turns: ChatMessage[] = [];
  let pendingSystem: string[] = [];
  for (const message of messages.slice(position)) {
    if (isSystemLike(message)) {
      pendingSystem.push(textOf(message.content));
    } else if (message.role === 'user') {
      appendUser(turns, pendingSystem.length > 0 ? prefixed(message, pendingSystem) : message);
      pendingSystem = [];
    } else if (message.role === 'assistant') {
      appendAssistant(turns, message);
    } else {
      appendTool(turns, message);
    }
  }
  if (pendingSystem.length > 0) appendUser(turns, { role: 'user', content: pendingSystem.join('\n\n') });
  // Sonar wants the first turn after the system messages to be the user's; OpenAI lets an assistant open.
  if (turns[0] !== undefined && turns[0].role !== 'user') turns.unshift({ role: 'user', content: PLACEHOLDER_USER_TEXT });
  return [...leading, ...turns];
}

function isSystemLike(message: ChatMessage): boolean {
  return message.role === 'system' || message.role === 'developer';
}

function prefixed(message: ChatMessage, systemTexts: string[]): ChatMessage {
  return { ...message, content: joinContent(systemTexts.join('\n\n'), message.content) };
}

function appendUser(turns: ChatMessage[], message: ChatMessage): void {
  const last = turns.at(-1);
  if (last !== undefined && (last.role === 'user' || last.role === 'tool')) {
    last.content = joinContent(last.content, last.role === 'tool' ? textOf(message.content) : message.content);
    return;
  }
  turns.push({ ...message, role: 'user' });
}

function appendAssistant(turns: ChatMessage[], message: ChatMessage): void {
  const last = turns.at(-1);
  if (last?.role !== 'assistant') {
    turns.push({ ...message });
    return;
  }
  last.content = joinContent(last.content, message.content);
  const toolCalls = [...(last.tool_calls ?? []), ...(message.tool_calls ?? [])];
  if (toolCalls.length > 0) last.tool_calls = toolCalls;
}

function appendTool(turns: ChatMessage[], message: ChatMessage): void {
  const last = turns.at(-1);
  const answersToolCalls = last !== undefined && ((last.role === 'assistant' && (last.tool_calls?.length ?? 0) > 0) || last.role === 'tool');
  if (answersToolCalls) turns.push({ ...message, role: 'tool' });
  else appendUser(turns, { role: 'user', content: textOf(message.content) });
}

function textOf(content: ChatMessage['content']): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((part) => (part.type === 'text' && typeof part.text === 'string' ? part.text : '')).join('');
}

/** Joins two contents with a blank line; text stays a string, anything with parts becomes parts. */
function joinContent(first: ChatMessage['content'], second: ChatMessage['content']): ChatMessage['content'] {
  if (first === null || first === undefined || first === '') return second;
  if (second === null || second === undefined || second === '') return first;
  if (typeof first === 'string' && typeof second === 'string') return `${first}\n\n${second}`;
  return [...partsOf(first), { type: 'text', text: '\n\n' }, ...partsOf(second)];
}

function partsOf(content: string | ContentPart[]): ContentPart[] {
  return typeof content === 'string' ? [{ type: 'text', text: content }] : content;
}
