// Whether a Messages request asks for citations: a search result or a document with
// `citations: {enabled: true}`, in a turn or inside a tool result. Only Anthropic's own Messages API
// gives them back (`citations` on its text blocks, `citations_delta` events in a stream); the
// translation through Keyway's vocabulary carries an answer's text only, so such a request goes to
// that API whenever Anthropic serves it (dialect.ts).

type Block = Record<string, unknown>;

/** The blocks Anthropic cites from (its CitationsConfigParam is on these two). */
const CITABLE_TYPES = new Set(['search_result', 'document']);

function isRecord(value: unknown): value is Block {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function enablesCitations(block: unknown): boolean {
  if (!isRecord(block) || !CITABLE_TYPES.has(String(block.type))) return false;
  return isRecord(block.citations) && block.citations.enabled === true;
}

/** A citable block itself, or a tool result that returned one (a search tool's results). */
function asksInBlock(block: unknown): boolean {
  if (enablesCitations(block)) return true;
  return isRecord(block) && block.type === 'tool_result' && Array.isArray(block.content) && block.content.some(enablesCitations);
}

/** Whether any turn of `messages` (a Messages request's, validated or not) holds a block with citations enabled. */
export function asksForCitations(messages: unknown): boolean {
  if (!Array.isArray(messages)) return false;
  return messages.some((turn) => isRecord(turn) && Array.isArray(turn.content) && turn.content.some(asksInBlock));
}
