// Anthropic's search results (`search_result` blocks: a source the model may cite, in a user turn or a
// tool result) in the shared vocabulary. Anthropic takes the block as the client wrote it, citations
// flag and cache_control included; every other provider has no such block, so it gets the result's
// title, source and text as plain text, with a warning, and none of Anthropic's fields.

import { invalidField } from '../errors.ts';
import type { ChatMessage, ContentPart, SearchResultPart } from '../spec/vocabulary.ts';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Refuses a search result Anthropic would refuse for lack of what its text is made of: `source` and
 * `title` strings, and `content`, a non-empty list of text blocks (Anthropic's SearchResultBlockParam).
 * Other fields are Anthropic's to judge when it serves, and are never sent elsewhere.
 */
export function checkSearchResult(block: Record<string, unknown>, path: string): SearchResultPart {
  if (typeof block.source !== 'string') throw invalidField(`${path}.source`, 'must be a string');
  if (typeof block.title !== 'string') throw invalidField(`${path}.title`, 'must be a string');
  if (!Array.isArray(block.content) || block.content.length === 0) throw invalidField(`${path}.content`, 'must be a non-empty array of text blocks');
  (block.content as unknown[]).forEach((item, position) => {
    if (!isRecord(item) || item.type !== 'text' || typeof item.text !== 'string') throw invalidField(`${path}.content[${position}]`, 'must be a text block');
  });
  return block as SearchResultPart;
}

/** The result as a provider without search results reads it: title, source, then each text block. */
export function searchResultText(result: SearchResultPart): string {
  return [`Search result: ${result.title}`, `Source: ${result.source}`, ...result.content.map((block) => block.text)].join('\n\n');
}

function hasSearchResult(message: ChatMessage): boolean {
  return Array.isArray(message.content) && message.content.some((part) => part.type === 'search_result');
}

function asText(part: ContentPart, path: string): ContentPart {
  if (part.type !== 'search_result') return part;
  return { type: 'text', text: searchResultText(checkSearchResult(part, path)) };
}

/**
 * The conversation for a provider without search results (all but Anthropic): each `search_result`
 * part (kept for Anthropic when it was to serve, then a fallback took over) becomes a text part,
 * without its citations flag or cache_control, and the change is warned once per message. Returns
 * `messages` itself when none holds one, so a request that needs no change is sent as it came.
 */
export function searchResultsAsText(messages: ChatMessage[], provider: string, warnings: string[]): ChatMessage[] {
  if (!messages.some(hasSearchResult)) return messages;
  return messages.map((message, position) => {
    if (!hasSearchResult(message)) return message;
    const warning = `${provider}: the search results at messages[${position}] were sent as text (title, source, content): this provider takes no search_result blocks`;
    if (!warnings.includes(warning)) warnings.push(warning);
    const parts = message.content as ContentPart[];
    return { ...message, content: parts.map((part, index) => asText(part, `messages[${position}].content[${index}]`)) };
  });
}
