// Anthropic `document` blocks through /v1/messages with the official `@anthropic-ai/sdk`: Anthropic
// gets every source whole (title, context, citations flag, cache_control); every other provider gets
// what the document holds in the parts it takes (text under the title and context, images, a PDF
// file), or a 400 naming the block when only Anthropic can read it. Nothing is dropped with a 200.

import { describe, expect, test } from 'bun:test';
import Anthropic from '@anthropic-ai/sdk';
import { anthropicDescriptor, cohereDescriptor, googleDescriptor, openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { rejectionOf, sdkClients, useClientWorld } from './client-fixtures.ts';

const world = useClientWorld([anthropicDescriptor, openAIDescriptor, googleDescriptor, cohereDescriptor]);

function client(): Anthropic {
  return sdkClients(world()).anthropic;
}

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const PDF = 'JVBERi0xLjQKJcfsj6IK';

/** The QA's request: a custom-content document, then the question. */
const notes: Anthropic.DocumentBlockParam = {
  type: 'document',
  source: { type: 'content', content: [{ type: 'text', text: 'DOC CONTENT 2' }] },
  title: 'Notes',
  context: 'From the team wiki',
  citations: { enabled: false },
  cache_control: { type: 'ephemeral' },
};
const handbook: Anthropic.DocumentBlockParam = {
  type: 'document',
  source: { type: 'text', media_type: 'text/plain', data: 'Staff get ten days of leave.' },
  title: 'Handbook',
};
const diagram: Anthropic.DocumentBlockParam = {
  type: 'document',
  source: {
    type: 'content',
    content: [
      { type: 'text', text: 'Figure 1:' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
    ],
  },
};
const report: Anthropic.DocumentBlockParam = { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: PDF }, title: 'report.pdf' };
const question: Anthropic.TextBlockParam = { type: 'text', text: 'summarise' };

function textOf(message: Anthropic.Message): string {
  return message.content.map((block) => (block.type === 'text' ? block.text : '')).join('');
}

function sentTo(provider: string): Record<string, unknown> {
  return world().simulator(provider).inferenceRequests()[0]?.body as Record<string, unknown>;
}

describe('documents routed to Anthropic', () => {
  const messages: Anthropic.MessageParam[] = [{ role: 'user', content: [notes, handbook, report, question] }];

  test('every document reaches Anthropic as sent, title, context, citations flag and cache_control included, with no warning', async () => {
    const { data: message, response } = await client().messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, messages }).withResponse();
    expect(response.headers.get('x-provider-used')).toBe('anthropic');
    expect(response.headers.get('x-keyway-warnings')).toBeNull();
    expect(sentTo('anthropic').messages).toEqual(messages);
    expect(textOf(message)).toBe('Echo: summarise');
  });

  test('streamed too', async () => {
    await client().messages.stream({ model: 'claude-haiku-4-5', max_tokens: 100, messages }).finalMessage();
    expect(sentTo('anthropic').messages).toEqual(messages);
  });

  test('a PDF by URL and a Files API document reach Anthropic as sent', async () => {
    const byReference: Anthropic.MessageParam[] = [
      {
        role: 'user',
        content: [
          { type: 'document', source: { type: 'url', url: 'https://example.com/report.pdf' } },
          { type: 'document', source: { type: 'file', file_id: 'file_011CNha8iCJcU1wXNR6q4V8w' }, title: 'Upload' },
          question,
        ],
      },
    ];
    const message = await client().messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, messages: byReference });
    expect(textOf(message)).toBe('Echo: summarise');
    expect(sentTo('anthropic').messages).toEqual(byReference);
  });

  test('a malformed document is refused as Anthropic refuses it, naming the block, before any upstream call', async () => {
    const refused = await rejectionOf(
      client().messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'html', data: '<p>x</p>' } } as never, question] }],
      }),
    );
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect((refused as InstanceType<typeof Anthropic.BadRequestError>).message).toContain('messages[0].content[0].source.type');
    expect(world().simulator('anthropic').inferenceRequests()).toEqual([]);
  });
});

describe('documents routed to providers without them', () => {
  const warning = 'the documents at messages[0] were sent as text, images and PDF files';

  test('OpenAI gets text under the title and context, images as image parts and the PDF as a file part, warned', async () => {
    const { data: message, response } = await client()
      .messages.create({ model: 'gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: [notes, handbook, diagram, report, question] }] })
      .withResponse();
    // OpenAI's simulator echoes every text of the user turn: the model read the documents.
    expect(textOf(message)).toContain('DOC CONTENT 2');
    expect(textOf(message)).toContain('Staff get ten days of leave.');
    expect(response.headers.get('x-keyway-warnings')).toContain(`openai: ${warning}`);
    expect((sentTo('openai').messages as unknown[])[0]).toEqual({
      role: 'user',
      content: [
        { type: 'text', text: 'Document: Notes\n\nFrom the team wiki\n\nDOC CONTENT 2' },
        { type: 'text', text: 'Document: Handbook\n\nStaff get ten days of leave.' },
        { type: 'text', text: 'Figure 1:' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
        { type: 'file', file: { file_data: `data:application/pdf;base64,${PDF}`, filename: 'report.pdf' } },
        { type: 'text', text: 'summarise' },
      ],
    });
    for (const field of ['document', 'citations', 'cache_control']) expect(JSON.stringify(sentTo('openai'))).not.toContain(field);
  });

  test('Gemini gets the text as text parts and the PDF inline', async () => {
    const { response } = await client()
      .messages.create({ model: 'gemini-pro', max_tokens: 100, messages: [{ role: 'user', content: [notes, report, question] }] })
      .withResponse();
    expect(response.headers.get('x-keyway-warnings')).toContain(`google: ${warning}`);
    const contents = sentTo('google').contents as Array<{ parts: unknown[] }>;
    expect(contents[0]?.parts).toEqual([
      { text: 'Document: Notes\n\nFrom the team wiki\n\nDOC CONTENT 2' },
      { inlineData: { mimeType: 'application/pdf', data: PDF } },
      { text: 'summarise' },
    ]);
  });

  test('a PDF by URL or a Files API id is refused for OpenAI with a 400 naming the block, never dropped', async () => {
    for (const source of [
      { type: 'url', url: 'https://example.com/report.pdf' },
      { type: 'file', file_id: 'file_011CNha8iCJcU1wXNR6q4V8w' },
    ] as const) {
      const refused = await rejectionOf(
        client().messages.create({ model: 'gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: [question, { type: 'document', source }] }] }),
      );
      expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
      expect((refused as InstanceType<typeof Anthropic.BadRequestError>).message).toContain('messages[0].content[1]');
      expect((refused as InstanceType<typeof Anthropic.BadRequestError>).message).toContain('cannot be sent to openai, which takes no document blocks');
    }
    expect(world().simulator('openai').inferenceRequests()).toEqual([]);
  });

  test('a PDF is refused for Cohere, which takes no files', async () => {
    const refused = await rejectionOf(
      client().messages.create({ model: 'command-r-plus', max_tokens: 100, messages: [{ role: 'user', content: [report, question] }] }),
    );
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect((refused as InstanceType<typeof Anthropic.BadRequestError>).message).toContain("Cohere accepts text and image_url parts; got a 'file' part");
    expect(world().simulator('cohere').inferenceRequests()).toEqual([]);
  });

  test('a fallback from Anthropic to OpenAI: Anthropic got the documents whole, OpenAI their translation', async () => {
    world().simulator('anthropic').inject({ kind: 'server_error' });
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: [notes, question] }];
    const { response } = await client()
      .messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        messages,
        routing: { strategy: 'fallback_chain', provider_order: ['anthropic', 'openai'] },
      } as Anthropic.MessageCreateParamsNonStreaming)
      .withResponse();
    expect(response.headers.get('x-provider-used')).toBe('openai');
    expect(sentTo('anthropic').messages).toEqual(messages);
    expect((sentTo('openai').messages as unknown[])[0]).toEqual({
      role: 'user',
      content: [
        { type: 'text', text: 'Document: Notes\n\nFrom the team wiki\n\nDOC CONTENT 2' },
        { type: 'text', text: 'summarise' },
      ],
    });
  });
});
