// Provider-hosted tools: web search, code execution and remote MCP servers named in a request's
// `tools` (or, for Anthropic's MCP connector, its `mcp_servers`), and web search asked for by a body
// field (`web_search_options`, Perplexity's search filters). They run on the provider's side, cost
// money and reach the internet, so a team's `byok_permissions.hosted_tools` says which it may use.
// A team whose policy sets `hosted_tools` gets exactly that (a hosted tool it does not name is
// refused); a team without it, and a request for no team, keep today's behaviour.

import { definePlugin, PLUGIN_API_VERSION } from '../../core/spec/plugin.ts';
import { teamOf, type HostedTools } from '../../plugins/teams/types.ts';
import { compileServerAllowlist, type ServerAllowlist } from '../../core/wire/server-urls.ts';

export const HOSTED_TOOLS_POLICY = 'hosted-tools';

export type HostedToolKind = 'web_search' | 'code_execution' | 'mcp' | 'other';

export interface HostedToolUse {
  kind: HostedToolKind;
  /** The tool's `type` as sent. */
  type: string;
  /** The remote MCP server's URL, for `mcp`. */
  serverUrl?: string;
  /** Where it is in the request, for `param`. */
  param: string;
}

/** Client-side tools: defined by the caller and run by the caller, never by the provider. */
const CLIENT_TOOL_TYPES = new Set(['function', 'custom']);

/**
 * Tools Anthropic's API defines but the caller runs (`bash_20250124`, `text_editor_20250728`, computer
 * use, `memory_20250818`): the model asks for them with tool_use blocks, and nothing runs on the provider's side.
 */
const ANTHROPIC_CLIENT_TOOL = /^(?:bash|text_editor|computer|memory|computer_toolset|browser_toolset)_\d{8}$/;

function isClientTool(type: string): boolean {
  return CLIENT_TOOL_TYPES.has(type) || ANTHROPIC_CLIENT_TOOL.test(type);
}

export function kindOf(type: string): HostedToolKind {
  if (type.startsWith('web_search')) return 'web_search'; // web_search, web_search_preview…, web_search_20250305
  // Anthropic's web fetch reads pages from the internet as its web search does.
  if (type.startsWith('web_fetch')) return 'web_search';
  if (type.startsWith('code_execution') || type === 'code_interpreter') return 'code_execution';
  if (type === 'mcp' || type === 'url') return 'mcp';
  return 'other';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Body fields that turn on the provider's web search without a tool: OpenAI's search models take
 * `web_search_options` (Keyway bills it as a search, core/accounting/account.ts), and Perplexity's
 * Sonar shapes its search with the same field and these filters.
 */
export const WEB_SEARCH_FIELDS: readonly string[] = [
  'web_search_options',
  'search_domain_filter',
  'search_recency_filter',
  'search_mode',
  'search_after_date_filter',
  'search_before_date_filter',
  'last_updated_after_filter',
  'last_updated_before_filter',
];

/** Every provider-hosted tool a request asks for. */
export function hostedToolsOf(request: { tools?: unknown; mcp_servers?: unknown; [field: string]: unknown }): HostedToolUse[] {
  const uses: HostedToolUse[] = [];
  for (const field of WEB_SEARCH_FIELDS) {
    // `null` is how clients leave an optional field unset: it asks for nothing.
    if (request[field] !== undefined && request[field] !== null) uses.push({ kind: 'web_search', type: field, param: field });
  }
  if (Array.isArray(request.tools)) {
    request.tools.forEach((tool, index) => {
      if (!isRecord(tool) || typeof tool.type !== 'string' || isClientTool(tool.type)) return;
      const use: HostedToolUse = { kind: kindOf(tool.type), type: tool.type, param: `tools[${index}]` };
      if (use.kind === 'mcp') use.serverUrl = typeof tool.server_url === 'string' ? tool.server_url : '';
      uses.push(use);
    });
  }
  if (Array.isArray(request.mcp_servers)) {
    request.mcp_servers.forEach((server, index) => {
      const url = isRecord(server) && typeof server.url === 'string' ? server.url : '';
      uses.push({ kind: 'mcp', type: 'mcp', serverUrl: url, param: `mcp_servers[${index}]` });
    });
  }
  return uses;
}

const serverLists = new WeakMap<HostedTools, ServerAllowlist>();

function serversOf(hostedTools: HostedTools): ServerAllowlist {
  let allowlist = serverLists.get(hostedTools);
  if (allowlist === undefined) {
    allowlist = compileServerAllowlist(Array.isArray(hostedTools.mcp_servers) ? hostedTools.mcp_servers : []);
    serverLists.set(hostedTools, allowlist);
  }
  return allowlist;
}

/** The URL as a refusal may show it: user info can hold a password, so it is left out. */
function shownServerUrl(url: string): string {
  return url.slice(0, 300).replace(/^([^/]*\/\/)[^/?#]*@/, '$1…@');
}

/** Why the team may not use this tool, or undefined when it may. */
export function refusalOf(hostedTools: HostedTools, use: HostedToolUse): string | undefined {
  switch (use.kind) {
    case 'web_search':
      return hostedTools.web_search === true ? undefined : `This team may not use the provider's web search ('${use.type}').`;
    case 'code_execution':
      return hostedTools.code_execution === true ? undefined : `This team may not use the provider's code execution ('${use.type}').`;
    case 'mcp':
      return use.serverUrl !== undefined && use.serverUrl !== '' && serversOf(hostedTools).test(use.serverUrl)
        ? undefined
        : `This team may not use the remote MCP server '${shownServerUrl(use.serverUrl ?? '')}'.`;
    default:
      return `This team may not use the provider-hosted tool '${use.type}'.`;
  }
}

export const hostedToolsPolicy = definePlugin({
  name: HOSTED_TOOLS_POLICY,
  version: '1.0.0',
  apiVersion: PLUGIN_API_VERSION,
  kind: 'policy',
  description: "A team's hosted_tools (web search, code execution, remote MCP servers): 403 tool_not_allowed",
  dependencies: ['teams'],
  setup({ services }) {
    return {
      hooks: {
        auth(context) {
          const hostedTools = teamOf(services.snapshot, context)?.permissions.hosted_tools;
          if (hostedTools === undefined || hostedTools === null) return;
          for (const use of hostedToolsOf(context.request)) {
            const refusal = refusalOf(hostedTools, use);
            if (refusal !== undefined) {
              throw services.errors.create('tool_not_allowed', { detail: services.errors.redact(refusal) }, { param: use.param, extra: { tool: use.kind } });
            }
          }
        },
      },
    };
  },
});

export default hostedToolsPolicy;
