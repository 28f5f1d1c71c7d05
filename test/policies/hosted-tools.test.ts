import { describe, expect, test } from 'bun:test';
import { hostedToolsOf, hostedToolsPolicy } from '../../policies/hosted-tools/index.ts';
import type { TeamPermissions } from '../../plugins/teams/types.ts';
import { context, hooksOf, refusalOf, teamsSection } from './helpers.ts';

const FUNCTION_TOOL = { type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } };

async function refusal(permissions: TeamPermissions | undefined, tools: unknown[], extra: Record<string, unknown> = {}) {
  const hooks = await hooksOf(hostedToolsPolicy, teamsSection(permissions));
  return refusalOf(() => hooks.auth?.(context({ body: { tools, ...extra } as never })));
}

describe('hosted-tools', () => {
  test('recognises OpenAI and Anthropic hosted tools and remote MCP servers; function tools are not hosted', () => {
    const uses = hostedToolsOf({
      tools: [
        FUNCTION_TOOL,
        { type: 'web_search_preview' },
        { type: 'web_search_20250305', name: 'web_search' },
        { type: 'code_interpreter' },
        { type: 'code_execution_20250522' },
        { type: 'mcp', server_url: 'https://mcp.example.com/sse' },
        { type: 'file_search' },
      ],
      mcp_servers: [{ type: 'url', url: 'https://mcp.other.example/mcp' }],
    });
    expect(uses.map((use) => use.kind)).toEqual(['web_search', 'web_search', 'code_execution', 'code_execution', 'mcp', 'other', 'mcp']);
    expect(uses.filter((use) => use.kind === 'mcp').map((use) => use.serverUrl)).toEqual(['https://mcp.example.com/sse', 'https://mcp.other.example/mcp']);
  });

  test("a team without hosted_tools, or no team, keeps today's behaviour", async () => {
    expect(await refusal({}, [{ type: 'web_search' }, { type: 'mcp', server_url: 'https://x.example' }])).toBeUndefined();
    expect(await refusal(undefined, [{ type: 'web_search' }])).toBeUndefined();
  });

  test('a team with hosted_tools gets exactly that', async () => {
    const permissions: TeamPermissions = { hosted_tools: { web_search: true, code_execution: false, mcp_servers: ['https://mcp.example.com/*'] } };
    expect(await refusal(permissions, [FUNCTION_TOOL, { type: 'web_search' }, { type: 'mcp', server_url: 'https://mcp.example.com/sse' }])).toBeUndefined();
    expect(await refusal(permissions, [{ type: 'code_interpreter' }])).toBe('tool_not_allowed');
    expect(await refusal(permissions, [{ type: 'mcp', server_url: 'https://evil.example/mcp' }])).toBe('tool_not_allowed');
    expect(await refusal(permissions, [{ type: 'mcp' }])).toBe('tool_not_allowed');
    expect(await refusal(permissions, [{ type: 'file_search' }])).toBe('tool_not_allowed');
    expect(await refusal(permissions, [], { mcp_servers: [{ type: 'url', url: 'https://evil.example/mcp' }] })).toBe('tool_not_allowed');
    expect(await refusal({ hosted_tools: {} }, [{ type: 'web_search_preview' }])).toBe('tool_not_allowed');
    expect(await refusal({ hosted_tools: {} }, [FUNCTION_TOOL])).toBeUndefined();
  });

  test('the refusal is a 403 permission_error naming the tool position', async () => {
    const hooks = await hooksOf(hostedToolsPolicy, teamsSection({ hosted_tools: { web_search: false } }));
    try {
      await hooks.auth?.(context({ body: { tools: [FUNCTION_TOOL, { type: 'web_search' }] } as never }));
      throw new Error('not refused');
    } catch (error) {
      expect(error).toMatchObject({ status: 403, type: 'permission_error', code: 'tool_not_allowed', param: 'tools[1]' });
    }
  });
});
