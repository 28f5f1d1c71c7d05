import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import type { Fault } from './common.ts';
import { countTokens } from './common.ts';
import { startGoogleSimulator } from './google.ts';

const simulator = startGoogleSimulator();
const key = 'google-test-key';
const weather = {
  name: 'get_weather',
  description: 'Weather',
  parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' }, days: { type: 'INTEGER' } }, required: ['city', 'days'] },
};
const clock = { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } };
const pngBase64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

afterAll(() => simulator.stop());
beforeEach(() => simulator.reset());

async function call(body: unknown, options: { model?: string; method?: string; query?: string; headers?: Record<string, string> } = {}) {
  const url = `${simulator.url}/v1beta/models/${options.model ?? 'gemini-2.5-flash'}:${options.method ?? 'generateContent'}${options.query ?? ''}`;
  const response = await fetch(url, {
    method: 'POST',
    headers: options.headers ?? { 'content-type': 'application/json', 'x-goog-api-key': key },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : undefined };
}

async function expectInvalid(body: unknown, fragment: string, model?: string) {
  const response = await call(body, { model });
  expect(response.status).toBe(400);
  expect(response.json.error.status).toBe('INVALID_ARGUMENT');
  expect(response.json.error.code).toBe(400);
  expect(response.json.error.message).toContain(fragment);
  return response.json.error;
}

const user = (...parts: unknown[]) => ({ role: 'user', parts });
const model = (...parts: unknown[]) => ({ role: 'model', parts });
const hello = { contents: [user({ text: 'hello' })] };

function sseChunks(text: string): any[] {
  return text
    .split('\r\n\r\n')
    .filter((chunk) => chunk.length > 0)
    .map((chunk) => JSON.parse(chunk.replace(/^data: /, '')));
}

describe('authentication', () => {
  test('keys in URLs are refused and recorded', async () => {
    const response = await call(hello, { query: `?key=${key}` });
    expect(response.status).toBe(400);
    expect(response.json.error.message).toBe('API keys in URLs are refused by this simulator');
    expect(simulator.urlKeyRequests()).toHaveLength(1);
    expect(simulator.urlKeyRequests()[0]?.search).toContain(`key=${key}`);
  });

  test('missing and bad keys', async () => {
    const missing = await call(hello, { headers: { 'content-type': 'application/json' } });
    expect([missing.status, missing.json.error.status]).toEqual([403, 'PERMISSION_DENIED']);
    const bad = await call(hello, { headers: { 'x-goog-api-key': 'wrong' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 400, message: 'API key not valid. Please pass a valid API key.', status: 'INVALID_ARGUMENT' });
    expect(bad.json.error.details[0]).toEqual({
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'API_KEY_INVALID',
      domain: 'googleapis.com',
      metadata: { service: 'generativelanguage.googleapis.com' },
    });
  });
});

describe('request validation', () => {
  test('roles are user and model only; systemInstruction carries the system prompt', async () => {
    await expectInvalid({ contents: [{ role: 'system', parts: [{ text: 'be terse' }] }, user({ text: 'hi' })] }, 'Please use a valid role: user, model.');
    await expectInvalid({ contents: [{ role: 'assistant', parts: [{ text: 'hi' }] }] }, 'Please use a valid role: user, model.');
    await expectInvalid({ contents: [] }, 'contents is not specified');
    const ok = await call({ systemInstruction: { parts: [{ text: 'be terse' }] }, contents: [{ parts: [{ text: 'hi' }] }] });
    expect(ok.status).toBe(200);
    expect(ok.json.usageMetadata.promptTokenCount).toBe(countTokens('be terse\nhi'));
  });

  test('JSON-Schema-only keywords in function parameters are unknown names', async () => {
    const parameters = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      additionalProperties: false,
      properties: { city: { type: 'string', $ref: '#/$defs/City' } },
      $defs: {},
    };
    const error = await expectInvalid(
      { ...hello, tools: [{ functionDeclarations: [{ name: 'get_weather', parameters }] }] },
      `Unknown name "additionalProperties" at 'tools[0].function_declarations[0].parameters': Cannot find field.`,
    );
    for (const name of ['$schema', '$defs']) expect(error.message).toContain(`Unknown name "${name}" at 'tools[0].function_declarations[0].parameters'`);
    expect(error.message).toContain(`Unknown name "$ref" at 'tools[0].function_declarations[0].parameters.properties[0].value'`);
    expect(error.details[0]['@type']).toBe('type.googleapis.com/google.rpc.BadRequest');
    expect(error.details[0].fieldViolations).toHaveLength(4);
    await expectInvalid(
      { ...hello, tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'object', properties: {} } }] }] },
      'should be non-empty for OBJECT type',
    );
    await expectInvalid(
      { ...hello, tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: ['string', 'null'] } }] }] },
      'Proto field is not repeating',
    );
    await expectInvalid({ ...hello, tools: [{ functionDeclarations: [{ name: '1bad name' }] }] }, 'Invalid function name');
  });

  test('generationConfig is camelCase and in range; safety settings use known enums', async () => {
    await expectInvalid({ ...hello, generation_config: { temperature: 1 } }, 'Unknown name "generation_config": Cannot find field.');
    await expectInvalid({ ...hello, generationConfig: { max_output_tokens: 5 } }, `Unknown name "max_output_tokens" at 'generation_config'`);
    await expectInvalid({ ...hello, generationConfig: { temperature: 2.5 } }, 'generation_config.temperature');
    await expectInvalid({ ...hello, generationConfig: { stopSequences: ['a', 'b', 'c', 'd', 'e', 'f'] } }, 'at most 5');
    await expectInvalid(
      { ...hello, safetySettings: [{ category: 'HARM_CATEGORY_VIOLENCE', threshold: 'BLOCK_NONE' }] },
      `Invalid value at 'safety_settings[0].category'`,
    );
    await expectInvalid(
      { ...hello, safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_MOST' }] },
      `Invalid value at 'safety_settings[0].threshold'`,
    );
    const ok = await call({ ...hello, safetySettings: [{ category: 'HARM_CATEGORY_HATE_SPEECH', threshold: 'BLOCK_ONLY_HIGH' }] });
    expect(ok.status).toBe(200);
  });

  test('function responses must answer the previous function call turn', async () => {
    const callTurn = model({ functionCall: { name: 'get_weather', args: { city: 'Paris' } } });
    const answer = (response: unknown, name = 'get_weather') => user({ functionResponse: { name, response } });
    const tools = [{ functionDeclarations: [weather] }];
    await expectInvalid(
      { tools, contents: [user({ text: 'hi' }), answer({ output: '21C' })] },
      'function response turn comes immediately after a function call turn',
    );
    await expectInvalid({ tools, contents: [user({ text: 'hi' }), callTurn, answer({ output: '21C' }, 'get_time')] }, "function response name 'get_time'");
    await expectInvalid(
      {
        tools,
        contents: [
          user({ text: 'hi' }),
          callTurn,
          user(
            { functionResponse: { name: 'get_weather', response: { output: 'a' } } },
            { functionResponse: { name: 'get_weather', response: { output: 'b' } } },
          ),
        ],
      },
      'number of function response parts',
    );
    await expectInvalid(
      { tools, contents: [user({ text: 'hi' }), callTurn, answer('21C')] },
      `Invalid value at 'contents[2].parts[0].function_response.response' (type.googleapis.com/google.protobuf.Struct), "21C"`,
    );
    await expectInvalid(
      { tools, contents: [user({ text: 'hi' }), model({ functionCall: { name: 'get_weather', args: '{}' } }), answer({})] },
      'function_call.args',
    );
    await expectInvalid({ tools, contents: [callTurn, answer({ output: '21C' })] }, 'function call turn comes immediately after a user turn');
  });

  test('allowedFunctionNames only with ANY; inline data must be base64', async () => {
    const tools = [{ functionDeclarations: [weather, clock] }];
    await expectInvalid(
      { ...hello, tools, toolConfig: { functionCallingConfig: { mode: 'AUTO', allowedFunctionNames: ['get_time'] } } },
      'allowed_function_names',
    );
    await expectInvalid(
      { ...hello, tools, toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['nope'] } } },
      "function 'nope' is not declared",
    );
    await expectInvalid(
      { contents: [user({ text: 'look' }, { inlineData: { mimeType: 'image/png', data: `data:image/png;base64,${pngBase64}` } })] },
      'Base64 decoding failed',
    );
    await expectInvalid({ contents: [user({})] }, "required oneof field 'data'");
  });

  test('unknown and non-generative models are 404 NOT_FOUND', async () => {
    for (const name of ['gemini-9-ultra', 'text-embedding-004']) {
      const response = await call(hello, { model: name });
      expect(response.status).toBe(404);
      expect(response.json.error.status).toBe('NOT_FOUND');
      expect(response.json.error.message).toContain(`models/${name} is not found for API version v1beta, or is not supported for generateContent`);
    }
  });
});

describe('answers', () => {
  test('plain answer has the documented shape and usage', async () => {
    const response = await call(hello);
    expect(response.json).toEqual({
      candidates: [{ content: { parts: [{ text: 'Echo: hello' }], role: 'model' }, finishReason: 'STOP', index: 0, safetyRatings: expect.any(Array) }],
      usageMetadata: {
        promptTokenCount: countTokens('hello'),
        candidatesTokenCount: countTokens('Echo: hello'),
        totalTokenCount: countTokens('hello') + countTokens('Echo: hello'),
        promptTokensDetails: [{ modality: 'TEXT', tokenCount: countTokens('hello') }],
      },
      modelVersion: 'gemini-2.5-flash',
      responseId: expect.any(String),
    });
    expect(response.json.candidates[0].safetyRatings[0]).toEqual({ category: 'HARM_CATEGORY_HARASSMENT', probability: 'NEGLIGIBLE' });
  });

  test('images, max tokens, stop sequences, JSON mode, several candidates', async () => {
    const image = await call({ contents: [user({ text: 'look' }, { inlineData: { mimeType: 'image/png', data: pngBase64 } })] });
    expect(image.json.candidates[0].content.parts[0].text).toBe('Echo: look [images: 1]');
    const short = await call({ contents: [user({ text: 'a long question' })], generationConfig: { maxOutputTokens: 2 } });
    expect([short.json.candidates[0].content.parts[0].text, short.json.candidates[0].finishReason]).toEqual(['Echo: a ', 'MAX_TOKENS']);
    const stopped = await call({ contents: [user({ text: 'one END two' })], generationConfig: { stopSequences: ['END'] } });
    expect([stopped.json.candidates[0].content.parts[0].text, stopped.json.candidates[0].finishReason]).toEqual(['Echo: one ', 'STOP']);
    const json = await call({
      ...hello,
      generationConfig: { responseMimeType: 'application/json', responseSchema: { type: 'OBJECT', properties: { echo: { type: 'STRING' } } } },
    });
    expect(JSON.parse(json.json.candidates[0].content.parts[0].text)).toEqual({ echo: 'hello' });
    const two = await call({ ...hello, generationConfig: { candidateCount: 2 } });
    expect(two.json.candidates.map((candidate: any) => candidate.index)).toEqual([0, 1]);
  });

  test('function calls carry no id and finish with STOP', async () => {
    const tools = [{ functionDeclarations: [weather, clock] }];
    const first = await call({ ...hello, tools });
    expect(first.json.candidates[0].content.parts).toEqual([{ functionCall: { name: 'get_weather', args: { city: 'sample', days: 1 } } }]);
    expect(first.json.candidates[0].finishReason).toBe('STOP');
    const forced = await call({ ...hello, tools, toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_time'] } } });
    expect(forced.json.candidates[0].content.parts[0].functionCall.name).toBe('get_time');
    const all = await call({ contents: [user({ text: 'call all tools' })], tools });
    expect(all.json.candidates[0].content.parts.map((part: any) => part.functionCall.name)).toEqual(['get_weather', 'get_time']);
    const none = await call({ ...hello, tools, toolConfig: { functionCallingConfig: { mode: 'NONE' } } });
    expect(none.json.candidates[0].content.parts[0].text).toBe('Echo: hello');
  });

  test('tool round trip answers with the results', async () => {
    const tools = [{ functionDeclarations: [weather, clock] }];
    const first = await call({ contents: [user({ text: 'call all tools' })], tools });
    const calls = first.json.candidates[0].content.parts;
    const responses = [
      { functionResponse: { name: 'get_weather', response: { output: '21C' } } },
      { functionResponse: { name: 'get_time', response: { output: { hour: 12 } } } },
    ];
    const second = await call({ contents: [user({ text: 'call all tools' }), model(...calls), user(...responses)], tools });
    expect(second.status).toBe(200);
    expect(second.json.candidates[0].content.parts[0].text).toBe('Tool results: 21C | {"hour":12}');
  });

  test('thinking reports thoughtsTokenCount and thought parts when asked', async () => {
    const response = await call({ ...hello, generationConfig: { thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } } });
    const [thought, answer] = response.json.candidates[0].content.parts;
    expect(thought).toEqual({ text: 'Thinking about: hello', thought: true });
    expect(answer).toEqual({ text: 'Echo: hello' });
    const usage = response.json.usageMetadata;
    expect(usage.thoughtsTokenCount).toBe(countTokens('Thinking about: hello'));
    expect(usage.totalTokenCount).toBe(usage.promptTokenCount + usage.candidatesTokenCount + usage.thoughtsTokenCount);
    const quiet = await call({ ...hello, generationConfig: { thinkingConfig: { thinkingBudget: 0 } } });
    expect(quiet.json.usageMetadata.thoughtsTokenCount).toBeUndefined();
  });

  test('Gemini 3 function calls must be replayed with their thought signature', async () => {
    const tools = [{ functionDeclarations: [weather] }];
    const first = await call({ ...hello, tools }, { model: 'gemini-3-pro-preview' });
    const part = first.json.candidates[0].content.parts[0];
    expect(part.thoughtSignature).toEqual(expect.any(String));
    const replay = (callPart: unknown) =>
      call(
        { tools, contents: [user({ text: 'hello' }), model(callPart), user({ functionResponse: { name: 'get_weather', response: { output: '21C' } } })] },
        { model: 'gemini-3-pro-preview' },
      );
    const { thoughtSignature: _signature, ...unsigned } = part;
    expect((await replay(unsigned)).json.error.message).toContain('Function call is missing a thought_signature');
    expect((await replay({ ...part, thoughtSignature: 'Zm9v' })).json.error.message).toBe('Corrupted thought signature.');
    expect((await replay(part)).json.candidates[0].content.parts[0].text).toBe('Tool results: 21C');
    // Google's documented placeholders for calls it did not produce (a history from another model) pass.
    for (const placeholder of ['skip_thought_signature_validator', 'context_engineering_is_the_way_to_go']) {
      expect((await replay({ ...part, thoughtSignature: placeholder })).json.candidates[0].content.parts[0].text).toBe('Tool results: 21C');
    }
  });

  test('safety block: no candidates, promptFeedback.blockReason SAFETY', async () => {
    const response = await call({ contents: [user({ text: 'please trigger safety block' })] });
    expect(response.status).toBe(200);
    expect(response.json.candidates).toBeUndefined();
    expect(response.json.promptFeedback.blockReason).toBe('SAFETY');
  });

  test('a malformed function call: no content, finishReason MALFORMED_FUNCTION_CALL, only when functions are declared', async () => {
    const tools = [{ functionDeclarations: [weather] }];
    const contents = [user({ text: 'please trigger malformed function call' })];
    const response = await call({ contents, tools });
    expect(response.status).toBe(200);
    expect(response.json.candidates).toEqual([{ finishReason: 'MALFORMED_FUNCTION_CALL', finishMessage: expect.stringContaining('get_weather'), index: 0 }]);
    expect(response.json.usageMetadata.candidatesTokenCount).toBeUndefined();
    const streamed = await call({ contents, tools }, { method: 'streamGenerateContent', query: '?alt=sse' });
    expect(sseChunks(streamed.text).map((chunk) => chunk.candidates[0].finishReason)).toEqual(['MALFORMED_FUNCTION_CALL']);
    expect((await call({ contents })).json.candidates[0].finishReason).toBe('STOP');
  });

  test('implicit caching reports a repeated long prefix', async () => {
    const long = 'x'.repeat(5_000);
    const contents = (question: string) => [user({ text: long }), model({ text: 'ok' }), user({ text: question })];
    expect((await call({ contents: contents('first') })).json.usageMetadata.cachedContentTokenCount).toBeUndefined();
    const second = await call({ contents: contents('second') });
    expect(second.json.usageMetadata.cachedContentTokenCount).toBe(countTokens(`${long}\nok`));
  });
});

describe('streaming', () => {
  test('SSE uses CRLF framing, text increments and a final chunk with finish and usage', async () => {
    const response = await call({ contents: [user({ text: 'stream this answer' })] }, { method: 'streamGenerateContent', query: '?alt=sse' });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(response.text).toContain('\r\n\r\n');
    expect(response.text).not.toContain('[DONE]');
    const chunks = sseChunks(response.text);
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.map((chunk) => chunk.candidates[0].content.parts[0].text).join('')).toBe('Echo: stream this answer');
    expect(chunks.slice(0, -1).every((chunk) => chunk.candidates[0].finishReason === undefined)).toBe(true);
    const final = chunks.at(-1);
    expect(final.candidates[0].finishReason).toBe('STOP');
    expect(final.usageMetadata.candidatesTokenCount).toBe(countTokens('Echo: stream this answer'));
  });

  test('function calls arrive whole; without alt=sse the stream is a JSON array', async () => {
    const tools = [{ functionDeclarations: [weather] }];
    const sse = sseChunks((await call({ ...hello, tools }, { method: 'streamGenerateContent', query: '?alt=sse' })).text);
    expect(sse).toHaveLength(1);
    expect(sse[0].candidates[0].content.parts[0].functionCall).toEqual({ name: 'get_weather', args: { city: 'sample', days: 1 } });
    const array = await call(hello, { method: 'streamGenerateContent' });
    expect(array.headers.get('content-type')).toContain('application/json');
    expect(Array.isArray(array.json)).toBe(true);
    expect(array.json.map((chunk: any) => chunk.candidates[0].content.parts[0].text).join('')).toBe('Echo: hello');
  });
});

describe('models and embeddings', () => {
  const get = async (path: string) => {
    const response = await fetch(`${simulator.url}${path}`, { headers: { 'x-goog-api-key': key } });
    return { status: response.status, json: (await response.json()) as any };
  };

  test('models list pages with pageSize and pageToken', async () => {
    const first = await get('/v1beta/models?pageSize=3');
    expect(first.json.models).toHaveLength(3);
    expect(first.json.models[0]).toMatchObject({
      name: 'models/gemini-2.5-flash',
      inputTokenLimit: 1_048_576,
      outputTokenLimit: 65_536,
      supportedGenerationMethods: expect.arrayContaining(['generateContent']),
    });
    const rest = await get(`/v1beta/models?pageSize=100&pageToken=${first.json.nextPageToken}`);
    expect(rest.json.nextPageToken).toBeUndefined();
    expect(rest.json.models.map((entry: any) => entry.name)).toContain('models/gemini-pro');
    expect((await get('/v1beta/models/gemini-pro')).json.inputTokenLimit).toBe(30_720);
    expect((await get('/v1beta/models/nope')).status).toBe(404);
  });

  test('embedContent and batchEmbedContents', async () => {
    const single = await call(
      { content: { parts: [{ text: 'hello' }] }, taskType: 'RETRIEVAL_QUERY' },
      { model: 'text-embedding-004', method: 'embedContent' },
    );
    expect(single.json.embedding.values).toHaveLength(768);
    const again = await call({ content: { parts: [{ text: 'hello' }] } }, { model: 'text-embedding-004', method: 'embedContent' });
    expect(again.json.embedding.values).toEqual(single.json.embedding.values);
    const small = await call({ content: { parts: [{ text: 'hello' }] }, outputDimensionality: 256 }, { model: 'gemini-embedding-001', method: 'embedContent' });
    expect(small.json.embedding.values).toHaveLength(256);
    const batch = await call(
      { requests: ['a', 'b'].map((text) => ({ model: 'models/text-embedding-004', content: { parts: [{ text }] } })) },
      { model: 'text-embedding-004', method: 'batchEmbedContents' },
    );
    expect(batch.json.embeddings).toHaveLength(2);
    const mismatch = await call(
      { requests: [{ model: 'models/other', content: { parts: [{ text: 'a' }] } }] },
      { model: 'text-embedding-004', method: 'batchEmbedContents' },
    );
    expect(mismatch.status).toBe(400);
    expect((await call({ content: { parts: [{ text: 'a' }] } }, { method: 'embedContent' })).status).toBe(404);
  });
});

describe('faults', () => {
  const cases: [Fault, number, string][] = [
    [{ kind: 'rate_limit', retryAfterSeconds: 9 }, 429, 'RESOURCE_EXHAUSTED'],
    [{ kind: 'quota' }, 429, 'RESOURCE_EXHAUSTED'],
    [{ kind: 'server_error' }, 500, 'INTERNAL'],
    [{ kind: 'overloaded' }, 503, 'UNAVAILABLE'],
    [{ kind: 'auth' }, 400, 'INVALID_ARGUMENT'],
    [{ kind: 'model_not_found' }, 404, 'NOT_FOUND'],
    [{ kind: 'context_length' }, 400, 'INVALID_ARGUMENT'],
  ];
  for (const [fault, status, canonical] of cases) {
    test(`${fault.kind} → ${status} ${canonical}`, async () => {
      simulator.inject(fault);
      const response = await call(hello);
      expect(response.status).toBe(status);
      expect(response.json.error).toMatchObject({ code: status, status: canonical });
      expect(typeof response.json.error.message).toBe('string');
      const types = (response.json.error.details ?? []).map((detail: any) => detail['@type']);
      if (fault.kind === 'rate_limit') {
        expect(response.headers.get('retry-after')).toBe('9');
        expect(response.json.error.details.find((detail: any) => detail['@type'].endsWith('RetryInfo')).retryDelay).toBe('9s');
      }
      if (fault.kind === 'quota') {
        expect(types).not.toContain('type.googleapis.com/google.rpc.RetryInfo');
        expect(response.json.error.details[0].violations[0].quotaId).toContain('PerDay');
      }
      if (fault.kind === 'auth') expect(response.json.error.details[0].reason).toBe('API_KEY_INVALID');
      if (fault.kind === 'overloaded') expect(response.json.error.message).toContain('The model is overloaded.');
      if (fault.kind === 'context_length')
        expect(response.json.error.message).toMatch(/^The input token count \(\d+\) exceeds the maximum number of tokens allowed \(1048576\)\.$/);
      expect((await call(hello)).status).toBe(200);
    });
  }

  test('status, delay and reset', async () => {
    simulator.inject(
      { kind: 'status', status: 499, body: { error: { code: 499, status: 'CANCELLED', message: 'x' } } },
      { kind: 'delay', delayMs: 120 },
      { kind: 'reset' },
    );
    expect((await call(hello)).status).toBe(499);
    const started = Date.now();
    expect((await call(hello)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    await expect(call(hello)).rejects.toThrow();
  });

  test('mid-stream error sends an error data line after N chunks; reset and slow streams', async () => {
    const body = { contents: [user({ text: 'a long enough question to get many chunks' })] };
    simulator.inject({ kind: 'mid_stream_error', afterChunks: 2 });
    const chunks = sseChunks((await call(body, { method: 'streamGenerateContent', query: '?alt=sse' })).text);
    expect(chunks).toHaveLength(3);
    expect(chunks[2]).toEqual({ error: { code: 500, message: expect.any(String), status: 'INTERNAL' } });
    simulator.inject({ kind: 'mid_stream_reset', afterChunks: 1 });
    await expect(call(body, { method: 'streamGenerateContent', query: '?alt=sse' })).rejects.toThrow();
    simulator.inject({ kind: 'slow_stream', delayMs: 15 });
    const started = Date.now();
    const slow = sseChunks((await call(hello, { method: 'streamGenerateContent', query: '?alt=sse' })).text);
    expect(slow.at(-1).candidates[0].finishReason).toBe('STOP');
    expect(Date.now() - started).toBeGreaterThanOrEqual(15 * slow.length);
  });
});
