// What OpenAI bills per call for its hosted tools, besides the tokens (the tool's results the model
// read are in the reported input tokens, at the model's rates). LiteLLM's price table does not list
// these fees, so the provider declares them for every OpenAI model (CatalogAliases.toolCallCosts);
// an operator's `tool_call_costs` override or a price file replaces them name by name.
//
// OpenAI's pricing page, "Built-in tools" (checked 2026-12): web search $10 per 1,000 calls; the
// older `web_search_preview` tool $10 per 1,000 calls on reasoning models and $25 on the others (whose
// search content tokens are free); file search $2.50 per 1,000 calls. Code interpreter is billed per
// container session and is not priced here (docs/costs.md, "Not priced yet").

type Json = Record<string, unknown>;

export const OPENAI_TOOL_CALL_COSTS: Readonly<Record<string, number>> = {
  web_search: 0.01,
  web_search_preview: 0.01,
  web_search_preview_non_reasoning: 0.025,
  file_search: 0.0025,
};

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The web search tool the request declared: its calls are billed under that tool's fee. */
function webSearchTool(request: Json): string | undefined {
  if (!Array.isArray(request.tools)) return undefined;
  for (const tool of request.tools) {
    const type = isRecord(tool) ? tool.type : undefined;
    if (typeof type === 'string' && type.startsWith('web_search')) return type.startsWith('web_search_preview') ? 'web_search_preview' : 'web_search';
  }
  return undefined;
}

/**
 * The billed calls of one answer, by fee name: one `web_search_call` item is one web search call, one
 * `file_search_call` item one file search call. A reasoning model's answer names its effort
 * (`reasoning.effort`); any other model's is null, which is what sets the preview tool's dearer fee.
 */
export function hostedToolCalls(response: Json, request: Json): Record<string, number> | undefined {
  if (!Array.isArray(response.output)) return undefined;
  let searches = 0;
  let fileSearches = 0;
  for (const item of response.output) {
    if (!isRecord(item)) continue;
    if (item.type === 'web_search_call') searches += 1;
    else if (item.type === 'file_search_call') fileSearches += 1;
  }
  if (searches === 0 && fileSearches === 0) return undefined;
  const calls: Record<string, number> = {};
  if (searches > 0) {
    const tool = webSearchTool(request) ?? 'web_search';
    const reasoning = isRecord(response.reasoning) && typeof response.reasoning.effort === 'string';
    calls[tool === 'web_search_preview' && !reasoning ? 'web_search_preview_non_reasoning' : tool] = searches;
  }
  if (fileSearches > 0) calls.file_search = fileSearches;
  return calls;
}
