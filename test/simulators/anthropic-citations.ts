// The citations the Anthropic simulator attaches to its text answer when the request enabled them,
// in the shapes of the official SDK (anthropic-sdk-typescript, src/resources/messages/messages.ts):
// a search result is cited as a `search_result_location` (CitationsSearchResultLocation), a plain-text
// document as a `char_location` (CitationCharLocation). The real model picks what it cites; the
// simulator cites every citable source once, so tests know exactly what comes back.
import type { AnthropicTurn } from './anthropic-validation.ts';
import { blocksOfType } from './anthropic-validation.ts';
import type { JsonObject } from './native-helpers.ts';
import { isObject, isString } from './native-helpers.ts';

function citationsEnabled(block: JsonObject): boolean {
  return isObject(block.citations) && block.citations.enabled === true;
}

/**
 * A search result cited by its first text block: `search_result_index` counts every search result
 * of the request in order; the block range is 0-based with an exclusive end, and `cited_text` is that
 * range's text (never a part of one block, as the SDK documents).
 */
function searchResultCitation(result: JsonObject, index: number): JsonObject {
  const first = (result.content as JsonObject[])[0] as JsonObject;
  return {
    type: 'search_result_location',
    cited_text: first.text,
    search_result_index: index,
    source: result.source,
    title: result.title,
    start_block_index: 0,
    end_block_index: 1,
  };
}

/** A plain-text document cited whole, by character range (0-based, exclusive end). */
function documentCitation(document: JsonObject, index: number): JsonObject | undefined {
  const source = document.source as JsonObject;
  if (source.type !== 'text' || !isString(source.data)) return undefined;
  return {
    type: 'char_location',
    cited_text: source.data,
    document_index: index,
    document_title: isString(document.title) ? document.title : null,
    start_char_index: 0,
    end_char_index: source.data.length,
    file_id: null,
  };
}

/** The answer's citations: none unless a search result or document enabled them. */
export function answerCitations(turns: AnthropicTurn[]): JsonObject[] {
  const citations: JsonObject[] = [];
  blocksOfType(turns, 'search_result').forEach((result, index) => {
    if (citationsEnabled(result)) citations.push(searchResultCitation(result, index));
  });
  blocksOfType(turns, 'document').forEach((document, index) => {
    const citation = citationsEnabled(document) ? documentCitation(document, index) : undefined;
    if (citation !== undefined) citations.push(citation);
  });
  return citations;
}
