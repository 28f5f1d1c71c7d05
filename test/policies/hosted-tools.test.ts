import { describe, expect, test } from 'bun:test';
import { hostedToolsOf, hostedToolsPolicy } from '../../policies/hosted-tools/index.ts';
import { compileServerAllowlist } from '../../core/wire/server-urls.ts';
import { compileAllowlist } from '../../core/wire/glob.ts';
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

  test("Anthropic's web fetch is web access; the tools Anthropic defines for the caller to run are not hosted", () => {
    const uses = hostedToolsOf({
      tools: [
        { type: 'web_fetch_20250910', name: 'web_fetch' },
        { type: 'bash_20250124', name: 'bash' },
        { type: 'text_editor_20250728', name: 'str_replace_based_edit_tool' },
        { type: 'computer_20250124', name: 'computer', display_width_px: 1024, display_height_px: 768 },
        { type: 'memory_20250818', name: 'memory' },
        { type: 'tool_search_tool_regex_20251119', name: 'tool_search_tool_regex' },
        { type: 'computer_use_preview' },
      ],
    });
    expect(uses.map((use) => [use.type, use.kind])).toEqual([
      ['web_fetch_20250910', 'web_search'],
      ['tool_search_tool_regex_20251119', 'other'],
      ['computer_use_preview', 'other'],
    ]);
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

  test('web search asked for by a body field (web_search_options, Perplexity search filters) is web search', () => {
    const uses = hostedToolsOf({
      web_search_options: { search_context_size: 'high' },
      search_domain_filter: ['example.com'],
      search_recency_filter: null,
      tools: [FUNCTION_TOOL],
    });
    expect(uses.map((use) => [use.kind, use.type, use.param])).toEqual([
      ['web_search', 'web_search_options', 'web_search_options'],
      ['web_search', 'search_domain_filter', 'search_domain_filter'],
    ]);
  });

  test('web_search_options is refused exactly as a web_search tool is, and allowed with web_search: true', async () => {
    const hooks = await hooksOf(hostedToolsPolicy, teamsSection({ hosted_tools: { web_search: false } }));
    try {
      await hooks.auth?.(context({ body: { web_search_options: {} } as never }));
      throw new Error('not refused');
    } catch (error) {
      expect(error).toMatchObject({ status: 403, type: 'permission_error', code: 'tool_not_allowed', param: 'web_search_options' });
    }
    expect(await refusal({ hosted_tools: { web_search: true } }, [], { web_search_options: { search_context_size: 'low' } })).toBeUndefined();
    expect(await refusal({ hosted_tools: {} }, [], { search_mode: 'web' })).toBe('tool_not_allowed');
  });
});

describe('remote MCP server patterns', () => {
  const allowlist = compileServerAllowlist([
    'https://*.mycorp.com/*',
    'https://mcp.example.com/sse',
    'http://localhost:8080/*',
    'https://mcp-*.tools.example/v1/*',
  ]);
  /** Each URL's verdict, named in a failure. */
  const expectVerdicts = (urls: readonly string[], allowed: boolean): void => {
    for (const url of urls) expect({ url, allowed: allowlist.test(url) }).toEqual({ url, allowed });
  };

  test('`*` in the host stands for whole labels of that host; `*` in the path for any path', () => {
    expectVerdicts(
      [
        'https://a.mycorp.com/mcp',
        'https://a.b.mycorp.com/',
        'https://a.mycorp.com',
        'https://A.MYCORP.COM/mcp',
        'https://a.mycorp.com:443/mcp',
        'https://a.mycorp.com/mcp?session=1#top',
        'https://mcp.example.com/sse',
        'http://localhost:8080/anything/at/all',
        'https://mcp-eu.tools.example/v1/sse',
      ],
      true,
    );
  });

  test('a host written into the path, the user info, the query or the fragment is not the host', () => {
    expectVerdicts(
      [
        'https://evil.com/.mycorp.com/',
        'https://evil.com/a.mycorp.com/mcp',
        'https://evil.com?.mycorp.com/',
        'https://evil.com#.mycorp.com/',
        'https://evil.com/?x=.mycorp.com/',
        'https://a.mycorp.com@evil.com/',
        'https://a.mycorp.com:443@evil.com/',
        'https://user:password@a.mycorp.com/mcp',
        'https://evil.com@a.mycorp.com/mcp',
        'https://a.mycorp.com\\@evil.com/',
        'https://evil.com\\.mycorp.com/',
        'https://a.mycorp.com.evil.com/',
        'https://evil-mycorp.com/x',
        'https://mycorp.com/x',
        'https://EVIL.COM/.mycorp.com/',
      ],
      false,
    );
  });

  test('scheme, port, trailing dots and URLs parsers disagree on are refused', () => {
    expectVerdicts(
      [
        'http://a.mycorp.com/mcp',
        'https://a.mycorp.com:8443/mcp',
        'https://a.mycorp.com./mcp',
        'https://evil.com./.mycorp.com/',
        'http://localhost/x',
        'http://localhost:8081/x',
        'https://a.mycorp.com\t/mcp',
        'https://a.mycorp.com /mcp',
        'https://ev%69l.mycorp.com/mcp',
        'https://mcp.example.com/sse?token=1',
        'https://mcp.example.com/other/../sse',
        'https://mcp.example.com/./sse',
        'https://mcp-eu.tools.example/v1/%2e%2e/admin',
        'https://mcp-eu.tools.example/v2/sse',
        'https://mcp-eu.x.tools.example/v1/sse',
        'not a url',
        '',
        '//a.mycorp.com/mcp',
      ],
      false,
    );
  });

  test('entries that are no URL pattern match nothing; `*` alone allows any server without user info', () => {
    const odd = compileServerAllowlist(['mcp.example.com', 'https://user@mcp.example.com/*', 'https://mcp..example.com/*', 'https://mcp.example.com:http/*']);
    for (const url of ['https://mcp.example.com/', 'https://user@mcp.example.com/x', 'https://mcp..example.com/x']) expect(odd.test(url)).toBe(false);
    const any = compileServerAllowlist(['*']);
    expect(any.test('https://anything.example/mcp')).toBe(true);
    expect(any.test('https://user:secret@anything.example/mcp')).toBe(false);
    expect(any.test('no url')).toBe(false);
  });

  test('a team with a host wildcard refuses the bypass the QA report found', async () => {
    const permissions: TeamPermissions = { hosted_tools: { mcp_servers: ['https://*.mycorp.com/*'] } };
    expect(await refusal(permissions, [{ type: 'mcp', server_url: 'https://evil.com/.mycorp.com/' }])).toBe('tool_not_allowed');
    expect(await refusal(permissions, [], { mcp_servers: [{ type: 'url', url: 'https://a.mycorp.com@evil.com/' }] })).toBe('tool_not_allowed');
    expect(await refusal(permissions, [{ type: 'mcp', server_url: 'https://tools.mycorp.com/sse' }])).toBeUndefined();
  });

  test('model-name globs keep matching any run of characters', () => {
    const models = compileAllowlist(['gpt-4o*', 'claude-*-sonnet-*', 'openai/*']);
    for (const name of ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet-20240620', 'openai/gpt-4o/x']) expect(models.test(name)).toBe(true);
    for (const name of ['gpt-4', 'claude-3-opus-20240229', 'GPT-4o']) expect(models.test(name)).toBe(false);
  });
});
