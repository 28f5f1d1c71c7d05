// Content blocking scans every text a provider reads, wherever it travels: an Anthropic document
// (title, context, a text source, a custom-content source's text blocks), in a turn or a tool result,
// and a file whose data is text (an OpenAI chat `file` part, a Responses `input_file`), which Gemini
// reads inline. Driven over HTTP with the official Anthropic SDK and plain requests, as a team's member
// sends them; a refused request reaches no provider.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import { addProviderKeys, call } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startAnthropicSimulator } from '../simulators/anthropic.ts';
import { rejectionOf } from '../clients/client-fixtures.ts';
import { type ErrorBody, startTeamGateway, type TeamGateway } from './team-fixture.ts';

const ANTHROPIC_KEY = 'sk-ant-api03-DocumentsBlockingAnthropicKey0001';
const CARD = '4111 1111 1111 1111';
const IBAN = 'DE89 3704 0044 0532 0130 00';
const OPENAI_LOOKALIKE = `sk-proj-${'Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LmNbVcXz'}`;

let anthropic: SimulatorHandle;
let team: TeamGateway;
let client: Anthropic;

beforeAll(async () => {
  anthropic = startAnthropicSimulator({ apiKeys: [ANTHROPIC_KEY] });
  team = await startTeamGateway({ usage_controls: { block_sensitive_content: true } }, { env: { KEYWAY_ANTHROPIC_BASE_URL: anthropic.url } });
  await addProviderKeys(team.gateway, [{ name: 'anthropic', api_key: ANTHROPIC_KEY }], team.adminKey);
  client = new Anthropic({ baseURL: team.gateway.url, apiKey: team.memberKey, maxRetries: 0 });
});

afterAll(async () => {
  await team?.stop();
  await anthropic?.stop();
});

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

function contentDocument(text: string, fields: Partial<Anthropic.DocumentBlockParam> = {}): Anthropic.DocumentBlockParam {
  return { type: 'document', source: { type: 'content', content: [{ type: 'text', text }] }, ...fields };
}

/** The refusal the SDK threw: a 400 naming the detector, never the content. */
function expectBlocked(refused: unknown, detector: string, secret: string): void {
  expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
  const error = refused as InstanceType<typeof Anthropic.BadRequestError>;
  expect(error.message).toContain('sensitive-content control');
  expect(error.message).toContain(`'${detector}'`);
  expect(error.message).not.toContain(secret);
}

describe('documents on /v1/messages, routed to Anthropic', () => {
  const question: Anthropic.TextBlockParam = { type: 'text', text: 'summarise' };

  test.each([
    ['a custom-content document (the QA request)', contentDocument(`card ${CARD}`), 'payment_card', CARD],
    ['a custom-content document given as a string', { type: 'document', source: { type: 'content', content: `card ${CARD}` } }, 'payment_card', CARD],
    ['a plain-text document', { type: 'document', source: { type: 'text', media_type: 'text/plain', data: `pay to ${IBAN}` } }, 'iban', 'DE89'],
    ["a document's title", contentDocument('nothing here', { title: `key ${OPENAI_LOOKALIKE}` }), 'openai_api_key', 'Zx9Qw8'],
    ["a document's context", contentDocument('nothing here', { context: `billing card ${CARD}` }), 'payment_card', CARD],
  ] as Array<[string, Anthropic.DocumentBlockParam, string, string]>)(
    '%s is scanned: 400, Anthropic never called',
    async (_name, document, detector, secret) => {
      anthropic.reset();
      const refused = await rejectionOf(
        client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 50, messages: [{ role: 'user', content: [document, question] }] }),
      );
      expectBlocked(refused, detector, secret);
      expect(anthropic.inferenceRequests()).toEqual([]);
    },
  );

  test('a document a tool returned is scanned too', async () => {
    anthropic.reset();
    const messages: Anthropic.MessageParam[] = [
      { role: 'user', content: 'read the file' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'read', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: [contentDocument(`card ${CARD}`)] }] },
    ];
    const refused = await rejectionOf(client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 50, messages }));
    expectBlocked(refused, 'payment_card', CARD);
    expect(anthropic.inferenceRequests()).toEqual([]);
  });

  test('a clean document is served, and reaches Anthropic whole', async () => {
    anthropic.reset();
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: [contentDocument('Ten days of leave.', { title: 'Handbook' }), question] }];
    const message = await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 50, messages });
    expect(message.content[0]?.type === 'text' ? message.content[0].text : '').toBe('Echo: summarise');
    expect((anthropic.inferenceRequests()[0]?.body as { messages: unknown }).messages).toEqual(messages);
  });
});

describe('files whose data is text', () => {
  const filePart = (mediaType: string, text: string) => ({
    type: 'file',
    file: { filename: 'notes.txt', file_data: `data:${mediaType};base64,${base64(text)}` },
  });

  test.each([
    ['text/plain', `card ${CARD}`],
    ['text/csv', `name,iban\nAda,${IBAN}`],
    ['application/json', JSON.stringify({ token: OPENAI_LOOKALIKE })],
  ])('a chat file part of %s is scanned: 400 naming the message, no upstream call', async (mediaType, text) => {
    const before = team.openai.inferenceRequests().length;
    const response = await call(
      team.gateway,
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'text', text: 'summarise' }, filePart(mediaType, text)] }] },
      { key: team.memberKey },
    );
    const body = (await response.json()) as ErrorBody;
    expect(response.status).toBe(400);
    expect(body.error.code).toBe('sensitive_content_blocked');
    expect(body.error.param).toBe('messages[0].content');
    expect(team.openai.inferenceRequests().length).toBe(before);
  });

  test('a Responses input_file of text is scanned', async () => {
    const before = team.openai.inferenceRequests().length;
    const response = await call(
      team.gateway,
      'POST',
      '/v1/responses',
      {
        model: 'gpt-4o-mini',
        input: [{ role: 'user', content: [{ type: 'input_file', filename: 'a.txt', file_data: `data:text/plain;base64,${base64(`card ${CARD}`)}` }] }],
      },
      { key: team.memberKey },
    );
    expect(response.status).toBe(400);
    expect(((await response.json()) as ErrorBody).error.code).toBe('sensitive_content_blocked');
    expect(team.openai.inferenceRequests().length).toBe(before);
  });

  test('a clean text file and a PDF (binary data, not read) are served', async () => {
    const pdf = { type: 'file', file: { filename: 'a.pdf', file_data: `data:application/pdf;base64,${base64(`%PDF-1.4 ${CARD}`)}` } };
    for (const part of [filePart('text/plain', 'Ten days of leave.'), pdf]) {
      const response = await call(
        team.gateway,
        'POST',
        '/v1/chat/completions',
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'text', text: 'summarise' }, part] }] },
        { key: team.memberKey },
      );
      expect(response.status).toBe(200);
    }
  });
});
