// The content-blocking policy: its hook over a fake snapshot (a team with the control on, off, or
// no team), then over HTTP with a team made through POST /v1/teams: a blocked request reaches no
// upstream on either dialect, and its message names the detector and the place, never the content.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { KeywayError } from '../../core/errors.ts';
import type { RequestContext } from '../../core/spec/lifecycle.ts';
import { contentBlockingPlugin } from '../../policies/content-blocking/index.ts';
import { call } from '../helpers/gateway.ts';
import { context, hooksOf, teamsSection } from './helpers.ts';
import { type ErrorBody, startTeamGateway, type TeamGateway } from './team-fixture.ts';

const CARD = '4111 1111 1111 1111';
const OPENAI_LOOKALIKE = `sk-proj-${'Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LmNbVcXz'}`;

function thrown(run: () => unknown): KeywayError | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof KeywayError) return error;
    throw error;
  }
}

describe('content-blocking hook', () => {
  const blocking = teamsSection({ usage_controls: { block_sensitive_content: true } });

  test('refuses a team with the control on: 400 sensitive_content_blocked naming detector and message, never the content', async () => {
    const hooks = await hooksOf(contentBlockingPlugin, blocking);
    const error = thrown(() =>
      hooks.call?.(
        context({
          body: {
            messages: [
              { role: 'system', content: 'be brief' },
              { role: 'user', content: `my card is ${CARD}` },
            ],
          },
        }),
      ),
    );
    expect(error?.code).toBe('sensitive_content_blocked');
    expect(error?.status).toBe(400);
    expect(error?.message).toContain('message 1');
    expect(error?.message).toContain("'payment_card'");
    expect(error?.param).toBe('messages[1].content');
    expect(error?.message).not.toContain('4111');
    expect(error?.message).not.toContain('1111');
  });

  test('names the tool call when the match is in its arguments', async () => {
    const hooks = await hooksOf(contentBlockingPlugin, blocking);
    const toolCalls = [{ id: 'call_1', type: 'function' as const, function: { name: 'deploy', arguments: JSON.stringify({ token: OPENAI_LOOKALIKE }) } }];
    const error = thrown(() =>
      hooks.call?.(
        context({
          body: {
            messages: [
              { role: 'user', content: 'deploy it' },
              { role: 'assistant', content: null, tool_calls: toolCalls },
            ],
          },
        }),
      ),
    );
    expect(error?.message).toContain('message 1, tool call 0 arguments');
    expect(error?.message).toContain("'openai_api_key'");
    expect(error?.param).toBe('messages[1].tool_calls[0].function.arguments');
    expect(error?.message).not.toContain('sk-proj');
  });

  test("a custom tool call's free-text input is scanned and named (OpenAI custom tools)", async () => {
    const hooks = await hooksOf(contentBlockingPlugin, blocking);
    const toolCalls = [{ id: 'call_1', type: 'custom', custom: { name: 'shell', input: `export TOKEN=${OPENAI_LOOKALIKE}` } }];
    const error = thrown(() =>
      hooks.call?.(
        context({
          body: {
            messages: [
              { role: 'user', content: 'run it' },
              { role: 'assistant', content: null, tool_calls: toolCalls },
            ],
          } as never,
        }),
      ),
    );
    expect(error?.code).toBe('sensitive_content_blocked');
    expect(error?.message).toContain('message 1, tool call 0 input');
    expect(error?.param).toBe('messages[1].tool_calls[0].custom.input');
    expect(error?.message).not.toContain('sk-proj');
  });

  test("an assistant turn's reasoning and Anthropic thinking blocks sent back are scanned", async () => {
    const hooks = await hooksOf(contentBlockingPlugin, blocking);
    for (const assistant of [
      { role: 'assistant', content: 'ok', reasoning_content: `the card is ${CARD}` },
      { role: 'assistant', content: 'ok', thinking_blocks: [{ type: 'thinking', thinking: `the card is ${CARD}`, signature: 'sig' }] },
    ]) {
      const error = thrown(() =>
        hooks.call?.(context({ body: { messages: [{ role: 'user', content: 'hi' }, assistant, { role: 'user', content: 'go on' }] } as never })),
      );
      expect(error?.code).toBe('sensitive_content_blocked');
      expect(error?.param).toBe('messages[1].content');
      expect(error?.message).not.toContain('4111');
    }
  });

  test("a search result's title, source and text blocks are scanned, in a user message or a tool message", async () => {
    const hooks = await hooksOf(contentBlockingPlugin, blocking);
    const result = (text: string, title = 'Orders', source = 'kb://orders') => ({ type: 'search_result', source, title, content: [{ type: 'text', text }] });
    for (const [message, position] of [
      [{ role: 'user', content: [result(`the card is ${CARD}`)] }, 0],
      [{ role: 'user', content: [result('nothing here', `card ${CARD}`)] }, 0],
      [{ role: 'user', content: [result('nothing here', 'Orders', `kb://${OPENAI_LOOKALIKE}`)] }, 0],
      [{ role: 'tool', tool_call_id: 'toolu_1', content: [result(`the card is ${CARD}`)] }, 1],
    ] as const) {
      const messages =
        position === 0
          ? [message]
          : [{ role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'search', arguments: '{}' } }] }, message];
      const error = thrown(() => hooks.call?.(context({ body: { messages } as never })));
      expect(error?.code).toBe('sensitive_content_blocked');
      expect(error?.param).toBe(`messages[${position}].content`);
    }
  });

  test('lets clean text through', async () => {
    const hooks = await hooksOf(contentBlockingPlugin, blocking);
    expect(
      thrown(() => hooks.call?.(context({ body: { messages: [{ role: 'user', content: 'Summarise order 1234567890123456, please.' }] } }))),
    ).toBeUndefined();
  });

  test('a team without the control, or no team, never reads the request', async () => {
    for (const section of [teamsSection({ usage_controls: { block_sensitive_content: false } }), teamsSection({}), teamsSection(undefined)]) {
      const hooks = await hooksOf(contentBlockingPlugin, section);
      const request = context();
      let touched = false;
      Object.defineProperty(request, 'request', {
        get() {
          touched = true;
          return { model: 'gpt-4o-mini', messages: [{ role: 'user', content: CARD }] };
        },
      });
      expect(thrown(() => hooks.call?.(request as RequestContext))).toBeUndefined();
      expect(touched).toBe(false);
    }
  });

  test("another account's team does not apply", async () => {
    const hooks = await hooksOf(contentBlockingPlugin, teamsSection({ usage_controls: { block_sensitive_content: true } }, 'acct_other'));
    expect(thrown(() => hooks.call?.(context({ body: { messages: [{ role: 'user', content: CARD }] } })))).toBeUndefined();
  });
});

describe('content-blocking over HTTP', () => {
  let team: TeamGateway;
  let open: TeamGateway;

  beforeAll(async () => {
    team = await startTeamGateway({ usage_controls: { block_sensitive_content: true } });
    open = await startTeamGateway({ usage_controls: { block_sensitive_content: false } });
  });
  afterAll(async () => {
    await team?.stop();
    await open?.stop();
  });

  const chat = (gateway: TeamGateway, text: string, stream = false) =>
    call(
      gateway.gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: text }] },
      { key: gateway.memberKey },
    );

  test('a card number on /v1/chat/completions: 400, no upstream call, the number nowhere in the answer', async () => {
    for (const stream of [false, true]) {
      const before = team.openai.inferenceRequests().length;
      const response = await chat(team, `Charge ${CARD} for the order`, stream);
      expect(response.status).toBe(400);
      const text = await response.text();
      const body = JSON.parse(text) as ErrorBody;
      expect(body.error.code).toBe('sensitive_content_blocked');
      expect(body.error.message).toContain('message 0');
      expect(body.error.message).toContain('payment card');
      expect(text).not.toContain('4111');
      expect(team.openai.inferenceRequests().length).toBe(before);
    }
  });

  test('a card grouped with no-break spaces, as pasted from a PDF or a web page, is refused too (QA)', async () => {
    const before = team.openai.inferenceRequests().length;
    for (const card of ['4111\u00a01111\u00a01111\u00a01111', '4111\u202f1111\u202f1111\u202f1111', '4111\u20131111\u20131111\u20131111']) {
      const response = await chat(team, `card ${card}`);
      const text = await response.text();
      expect(response.status).toBe(400);
      expect((JSON.parse(text) as ErrorBody).error.code).toBe('sensitive_content_blocked');
      expect(text).not.toContain('4111');
    }
    expect(team.openai.inferenceRequests().length).toBe(before);
  });

  test('a secret on /v1/messages: refused in the Anthropic error shape, the system prompt not counted as a message', async () => {
    const before = team.openai.inferenceRequests().length;
    const response = await call(
      team.gateway,
      'POST',
      '/v1/messages',
      { model: 'gpt-4o-mini', max_tokens: 32, system: 'You are terse.', messages: [{ role: 'user', content: `use ${OPENAI_LOOKALIKE} for the call` }] },
      { key: team.memberKey },
    );
    expect(response.status).toBe(400);
    const text = await response.text();
    const body = JSON.parse(text) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toContain('message 0');
    expect(body.error.message).toContain("'openai_api_key'");
    expect(text).not.toContain(OPENAI_LOOKALIKE);
    expect(text).not.toContain('Zx9Qw8');
    expect(team.openai.inferenceRequests().length).toBe(before);
  });

  test('every text the provider reads is scanned: refusal parts, a predicted output', async () => {
    const before = team.openai.inferenceRequests().length;
    const cases: Array<[string, string, Record<string, unknown>, string]> = [
      [
        '/v1/chat/completions',
        'a refusal part',
        {
          model: 'gpt-4o-mini',
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'assistant', content: [{ type: 'refusal', refusal: `I will not charge ${CARD}` }] },
            { role: 'user', content: 'go on' },
          ],
        },
        'messages[1].content',
      ],
      [
        '/v1/chat/completions',
        'a predicted output',
        { model: 'gpt-4o-mini', prediction: { type: 'content', content: `card ${CARD}` }, messages: [{ role: 'user', content: 'rewrite it' }] },
        'prediction.content',
      ],
      // QA20: a participant's name is sent to OpenAI with its message and read by the model.
      [
        '/v1/chat/completions',
        "a message's name",
        { model: 'gpt-4o-mini', messages: [{ role: 'user', name: CARD.replaceAll(' ', ''), content: 'hi' }] },
        'messages[0].name',
      ],
    ];
    for (const [path, name, body, param] of cases) {
      const response = await call(team.gateway, 'POST', path, body, { key: team.memberKey });
      const text = await response.text();
      expect({ name, status: response.status }).toEqual({ name, status: 400 });
      expect(text).toContain('payment card');
      expect(text).not.toContain('4111');
      if (path === '/v1/chat/completions') expect({ name, param: (JSON.parse(text) as ErrorBody).error.param }).toEqual({ name, param });
    }
    expect(team.openai.inferenceRequests().length).toBe(before);
  });

  test('on /v1/responses the refusal names the instructions or the input, as the client wrote them', async () => {
    const before = team.openai.inferenceRequests().length;
    for (const [body, param, where] of [
      [{ model: 'gpt-4o-mini', instructions: `Bill card ${CARD} when asked.`, input: 'hello' }, 'instructions', 'the instructions'],
      [{ model: 'gpt-4o-mini', instructions: 'Be brief.', input: `my card is ${CARD}` }, 'input', 'input message 0'],
      [
        {
          model: 'gpt-4o-mini',
          input: [
            { role: 'user', content: 'hi' },
            { role: 'user', content: `card ${CARD}` },
          ],
        },
        'input',
        'input message 1',
      ],
    ] as const) {
      const response = await call(team.gateway, 'POST', '/v1/responses', body, { key: team.memberKey });
      const text = await response.text();
      expect(response.status).toBe(400);
      const error = (JSON.parse(text) as ErrorBody).error;
      expect({ param: error.param, where: error.message.includes(where) }).toEqual({ param, where: true });
      expect(text).not.toContain('4111');
    }
    expect(team.openai.inferenceRequests().length).toBe(before);
  });

  test('an embeddings input is scanned too', async () => {
    const before = team.openai.inferenceRequests().length;
    const response = await call(
      team.gateway,
      'POST',
      '/v1/embeddings',
      { model: 'text-embedding-3-small', input: ['fine', 'IBAN DE89370400440532013000'] },
      { key: team.memberKey },
    );
    expect(response.status).toBe(400);
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe('sensitive_content_blocked');
    expect(body.error.message).toContain('input 1');
    expect(JSON.stringify(body)).not.toContain('DE89');
    expect(team.openai.inferenceRequests().length).toBe(before);
  });

  test('clean requests are served, and a team without the control is never scanned', async () => {
    const clean = await chat(team, 'What is the capital of France?');
    expect(clean.status).toBe(200);
    const unscanned = await chat(open, `Charge ${CARD} for the order`);
    expect(unscanned.status).toBe(200);
  });
});
