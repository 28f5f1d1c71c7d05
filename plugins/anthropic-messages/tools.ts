// Anthropic Messages tools → Keyway's function tools: custom tools are translated; a tool only
// Anthropic runs or defines is kept as sent and makes the request Anthropic's alone (`nativeOnly`).

import { invalidField, KeywayError } from '../../core/errors.ts';
import type { ChatRequest, ToolChoice, ToolDefinition } from '../../core/spec/vocabulary.ts';

/** What the tools' translation reads and sets of the request's translation (request.ts). */
export interface ToolTranslation {
  /** Whether Anthropic serves the translation (a tool's cache_control means something to it only). */
  native: boolean;
  nativeOnly: KeywayError | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Tools only Anthropic runs or defines are typed and have no input_schema: server tools (web search,
 * web fetch, code execution, tool search), which Anthropic runs, and the tools its API defines for
 * the client to run (bash, text editor, computer use, memory).
 */
function isAnthropicOnlyTool(tool: Record<string, unknown>): boolean {
  return tool.input_schema === undefined && tool.type !== undefined && tool.type !== 'custom';
}

function anthropicOnly(position: number, type: unknown): KeywayError {
  return new KeywayError(
    'unsupported_feature',
    {
      detail: `tools[${position}]: tool type '${String(type)}' exists only on Anthropic's API (a server tool, or a tool Anthropic defines): it is available when Anthropic serves the request, and this route has no Anthropic candidate (only custom tools are translated to other providers).`,
    },
    { param: `tools[${position}].type` },
  );
}

export function translateTools(tools: unknown, translation: ToolTranslation): ToolDefinition[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw invalidField('tools', 'must be an array');
  const definitions: ToolDefinition[] = [];
  (tools as unknown[]).forEach((tool, position) => {
    if (!isRecord(tool) || typeof tool.name !== 'string') throw invalidField(`tools[${position}].name`, 'must be a string');
    if (isAnthropicOnlyTool(tool)) {
      translation.nativeOnly ??= anthropicOnly(position, tool.type);
      // Kept as sent, for the team policies that look for a hosted tool (hosted-tools).
      definitions.push(tool as unknown as ToolDefinition);
      return;
    }
    const definition: ToolDefinition = {
      type: 'function',
      function: { name: tool.name, parameters: isRecord(tool.input_schema) ? tool.input_schema : { type: 'object', properties: {} } },
    };
    if (typeof tool.description === 'string') definition.function.description = tool.description;
    if (typeof tool.strict === 'boolean') definition.function.strict = tool.strict;
    // Like a content block's, a tool's breakpoint means something to Anthropic only.
    if (translation.native && tool.cache_control !== undefined) definition.cache_control = tool.cache_control;
    definitions.push(definition);
  });
  return definitions;
}

export function translateToolChoice(choice: unknown, request: ChatRequest): void {
  if (choice === undefined || choice === null) return;
  if (!isRecord(choice)) throw invalidField('tool_choice', 'must be an object');
  const byType: Record<string, ToolChoice | undefined> = { auto: 'auto', any: 'required', none: 'none' };
  if (choice.type === 'tool') {
    if (typeof choice.name !== 'string') throw invalidField('tool_choice.name', 'must be a string');
    request.tool_choice = { type: 'function', function: { name: choice.name } };
  } else {
    const mapped = byType[String(choice.type)];
    if (mapped === undefined) throw invalidField('tool_choice.type', "must be 'auto', 'any', 'tool' or 'none'");
    request.tool_choice = mapped;
  }
  if (choice.disable_parallel_tool_use === true) request.parallel_tool_calls = false;
}
