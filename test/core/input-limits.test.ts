// The pieces behind input limits and internal errors: the JSON depth scan, the body deadline,
// validation messages, and how a throw from an adapter is classified (provider failure or Keyway's own bug).

import { describe, expect, test } from 'bun:test';
import { Type } from '@sinclair/typebox';
import { DEFAULT_MAX_JSON_DEPTH, exceedsJsonDepth, readBodyText, readJson, validateBody } from '../../core/http/kit/body.ts';
import { KeywayError } from '../../core/errors.ts';
import { foreignFailure } from '../../core/lifecycle/attempt-failures.ts';

const nested = (depth: number, open = '[', close = ']') => `${open.repeat(depth)}${close.repeat(depth)}`;

describe('exceedsJsonDepth', () => {
  test('counts arrays and objects alike, up to and past the limit', () => {
    expect(exceedsJsonDepth(nested(64), 64)).toBe(false);
    expect(exceedsJsonDepth(nested(65), 64)).toBe(true);
    expect(exceedsJsonDepth('{"a":'.repeat(64) + '1' + '}'.repeat(64), 64)).toBe(false);
    expect(exceedsJsonDepth('{"a":'.repeat(65) + '1' + '}'.repeat(65), 64)).toBe(true);
    expect(exceedsJsonDepth('[{"a":[{"b":[1]}]}]', 5)).toBe(false);
    expect(exceedsJsonDepth('[{"a":[{"b":[1]}]}]', 4)).toBe(true);
  });

  test('depth is nesting, not the number of brackets: siblings do not add up', () => {
    const wide = `[${Array.from({ length: 1000 }, () => '[[1]]').join(',')}]`;
    expect(exceedsJsonDepth(wide, 3)).toBe(false);
    expect(exceedsJsonDepth(wide, 2)).toBe(true);
  });

  test('brackets inside strings do not count', () => {
    const text = JSON.stringify({ content: '['.repeat(10_000), other: '{{{{{{{{' });
    expect(exceedsJsonDepth(text, 2)).toBe(false);
  });

  test('escaped quotes do not end a string; an escaped backslash before a quote does', () => {
    // "\"[[[[" is one string: the brackets are inside it.
    expect(exceedsJsonDepth(JSON.stringify(['"[[[[[[']), 1)).toBe(false);
    // "\\" ends after the escaped backslash: the brackets after it are structure.
    expect(exceedsJsonDepth('["\\\\",[[[1]]]]', 3)).toBe(true);
    expect(exceedsJsonDepth('["\\\\",[[[1]]]]', 4)).toBe(false);
    // Three backslashes: an escaped backslash, then an escaped quote: still inside the string.
    expect(exceedsJsonDepth('["\\\\\\"[[[[[[[[", 1]', 1)).toBe(false);
    const tricky = JSON.stringify({ a: 'x\\', b: '"[[[[', c: '\\"]]]]' });
    expect(exceedsJsonDepth(tricky, 1)).toBe(false);
  });

  test('shallow malformed text is left to JSON.parse', () => {
    expect(exceedsJsonDepth('{"unterminated: [[[[[[[[[[[[', 2)).toBe(false);
    expect(exceedsJsonDepth(']]]]]]', 2)).toBe(false);
  });

  test('real payloads pass the default: a chat request with a 20-level tool schema', () => {
    let schema: Record<string, unknown> = { type: 'string' };
    for (let level = 0; level < 20; level++) schema = { type: 'object', properties: { inner: schema } };
    const body = JSON.stringify({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      tools: [{ type: 'function', function: { name: 'f', parameters: schema } }],
    });
    expect(exceedsJsonDepth(body, DEFAULT_MAX_JSON_DEPTH)).toBe(false);
  });

  test('a 1 MB body is scanned in milliseconds', () => {
    const messages = [];
    const prose = 'The quick brown fox jumps over the lazy dog, "quoted" and \\ escaped. '.repeat(20);
    while (messages.length * prose.length < 1_000_000) messages.push({ role: 'user', content: prose });
    const text = JSON.stringify({ model: 'gpt-4o', messages });
    for (let index = 0; index < 5; index++) exceedsJsonDepth(text, 64);
    const started = performance.now();
    for (let index = 0; index < 20; index++) exceedsJsonDepth(text, 64);
    expect((performance.now() - started) / 20).toBeLessThan(20);
  });
});

describe('readJson', () => {
  const request = (body: string) => new Request('http://keyway.test/', { method: 'POST', body });

  test('refuses deep nesting with invalid_json, naming the limit', async () => {
    const error = await readJson(request(nested(100_000)), { maxBodyBytes: 1024 * 1024 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KeywayError);
    expect((error as KeywayError).code).toBe('invalid_json');
    expect((error as KeywayError).message).toBe('The request body is not valid JSON: nested deeper than 64 levels');
  });

  test('the limit is a parameter', async () => {
    expect(await readJson(request(nested(10)), { maxBodyBytes: 1024, maxJsonDepth: 10 })).toEqual(JSON.parse(nested(10)));
    const error = await readJson(request(nested(11)), { maxBodyBytes: 1024, maxJsonDepth: 10 }).catch((caught: unknown) => caught);
    expect((error as KeywayError).message).toContain('nested deeper than 10 levels');
  });
});

describe('readBodyText: the body deadline', () => {
  /** A body sent without a length whose first piece comes and whose rest never does. */
  const stalled = () =>
    new Request('http://keyway.test/', {
      method: 'POST',
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"model":'));
        },
      }),
    });

  test('a body still incomplete at bodyTimeoutMs is 408 request_timeout, answered with Connection: close', async () => {
    const started = performance.now();
    const error = await readBodyText(stalled(), { maxBodyBytes: 1024, bodyTimeoutMs: 100 }).catch((caught: unknown) => caught);
    const elapsedMs = performance.now() - started;
    expect(error).toBeInstanceOf(KeywayError);
    expect((error as KeywayError).code).toBe('request_timeout');
    expect((error as KeywayError).status).toBe(408);
    expect((error as KeywayError).message).toBe('The request body did not arrive in full within 100 ms: it was sent too slowly.');
    expect((error as KeywayError).headers).toEqual({ connection: 'close' });
    expect(elapsedMs).toBeGreaterThanOrEqual(95);
    expect(elapsedMs).toBeLessThan(1_000);
  });

  test('a body that is all there is read as before, the deadline cancelled', async () => {
    const request = new Request('http://keyway.test/', { method: 'POST', body: '{"model":"gpt-4o"}' });
    expect(await readBodyText(request, { maxBodyBytes: 1024, bodyTimeoutMs: 100 })).toBe('{"model":"gpt-4o"}');
    expect(await readBodyText(new Request('http://keyway.test/', { method: 'POST' }), { maxBodyBytes: 1024, bodyTimeoutMs: 100 })).toBe('');
  });
});

describe('validation messages', () => {
  const messageOf = (schema: Parameters<typeof validateBody>[0], body: unknown): string => {
    try {
      validateBody(schema, body);
    } catch (error) {
      return (error as KeywayError).message;
    }
    throw new Error('expected a validation error');
  };

  test('a pattern uses errorMessage, else the description, else names the pattern', () => {
    expect(messageOf(Type.Object({ key: Type.String({ pattern: '^\\S+$', errorMessage: { pattern: 'must not contain whitespace' } }) }), { key: 'a b' })).toBe(
      "Invalid value for 'key': must not contain whitespace",
    );
    expect(messageOf(Type.Object({ key: Type.String({ pattern: '^\\S+$', description: 'must be one word' }) }), { key: 'a b' })).toBe(
      "Invalid value for 'key': must be one word",
    );
    expect(messageOf(Type.Object({ key: Type.String({ pattern: '^\\S+$' }) }), { key: 'a b' })).toBe("Invalid value for 'key': must match the pattern ^\\S+$");
  });

  test('a string errorMessage applies to every rule of that field', () => {
    expect(messageOf(Type.Object({ id: Type.String({ maxLength: 3, errorMessage: 'must be a short id' }) }), { id: 'long' })).toBe(
      "Invalid value for 'id': must be a short id",
    );
  });

  test('a union of literals lists the allowed values', () => {
    const schema = Type.Object({ role: Type.Union([Type.Literal('admin'), Type.Literal('developer'), Type.Literal('viewer')]) });
    expect(messageOf(schema, { role: 'root' })).toBe("Invalid value for 'role': expected one of: admin, developer, viewer");
    expect(messageOf(Type.Object({ org: Type.Union([Type.String(), Type.Null()]) }), { org: 5 })).toBe("Invalid value for 'org': expected string or null");
    expect(messageOf(Type.Object({ method: Type.Literal('AES-256-GCM') }), { method: 'DES' })).toBe("Invalid value for 'method': expected AES-256-GCM");
  });

  test('a union with a bounded number states the bounds, not only the types (0 is an integer, yet refused)', () => {
    const age = Type.Object({ days: Type.Union([Type.Integer({ minimum: 1, maximum: 3650 }), Type.Null()]) });
    expect(messageOf(age, { days: 0 })).toBe("Invalid value for 'days': must be an integer from 1 to 3650, or null");
    expect(messageOf(age, { days: 'soon' })).toBe("Invalid value for 'days': must be an integer from 1 to 3650, or null");
    const limit = Type.Object({ limit: Type.Union([Type.Number({ exclusiveMinimum: 0 }), Type.String(), Type.Null()]) });
    expect(messageOf(limit, { limit: -1 })).toBe("Invalid value for 'limit': must be a number greater than 0, or a string, or null");
  });

  test('numbers state their bounds', () => {
    expect(messageOf(Type.Object({ t: Type.Number({ minimum: 0, maximum: 2 }) }), { t: 3 })).toBe("Invalid value for 't': must be a number from 0 to 2");
    expect(messageOf(Type.Object({ t: Type.Number({ minimum: 0, maximum: 2 }) }), { t: 'hot' })).toBe("Invalid value for 't': must be a number from 0 to 2");
    expect(messageOf(Type.Object({ n: Type.Integer({ minimum: 1, maximum: 200 }) }), { n: 1.5 })).toBe(
      "Invalid value for 'n': must be an integer from 1 to 200",
    );
    expect(messageOf(Type.Object({ w: Type.Number({ exclusiveMinimum: 0, maximum: 1000 }) }), { w: 0 })).toBe(
      "Invalid value for 'w': must be a number greater than 0 and at most 1000",
    );
    expect(messageOf(Type.Object({ d: Type.Integer({ minimum: 1 }) }), { d: 0 })).toBe("Invalid value for 'd': must be an integer at least 1");
  });

  test('lengths and item counts', () => {
    expect(messageOf(Type.Object({ name: Type.String({ minLength: 1 }) }), { name: '' })).toBe("Invalid value for 'name': must not be empty");
    expect(messageOf(Type.Object({ name: Type.String({ maxLength: 3 }) }), { name: 'abcd' })).toBe(
      "Invalid value for 'name': must be at most 3 characters long",
    );
    expect(messageOf(Type.Object({ list: Type.Array(Type.String(), { minItems: 1 }) }), { list: [] })).toBe(
      "Invalid value for 'list': must hold at least 1 item",
    );
  });

  test('a missing field is still missing_field', () => {
    expect(messageOf(Type.Object({ name: Type.String() }), {})).toBe("Missing required field 'name'.");
  });
});

describe('foreignFailure: what a throw from an adapter means', () => {
  test('a reason (or keywayReason) is a provider failure that keeps its class', () => {
    const failure = foreignFailure('echo', Object.assign(new Error('slow down'), { reason: 'rate_limit', status: 429 }));
    expect({ code: failure.code, reason: failure.reason }).toEqual({ code: 'upstream_rate_limited', reason: 'rate_limit' });
    expect(foreignFailure('echo', Object.assign(new Error('x'), { keywayReason: 'auth_error' })).reason).toBe('auth_error');
    expect(foreignFailure('echo', Object.assign(new Error('x'), { reason: 'not-a-class' })).reason).toBe('server_error');
  });

  test('an HTTP status without a reason is classified from the status', () => {
    expect(foreignFailure('echo', Object.assign(new Error('down'), { status: 503 })).reason).toBe('server_error');
    expect(foreignFailure('echo', Object.assign(new Error('no'), { status: 401 })).reason).toBe('auth_error');
  });

  test("fetch's network rejections are provider failures", () => {
    const refused = Object.assign(new TypeError('Unable to connect'), { code: 'ECONNREFUSED' });
    expect({ code: foreignFailure('echo', refused).code, reason: foreignFailure('echo', refused).reason }).toEqual({
      code: 'upstream_error',
      reason: 'server_error',
    });
    const timeout = new DOMException('The operation timed out.', 'TimeoutError');
    expect(foreignFailure('echo', timeout).reason).toBe('timeout');
  });

  test("anything else is Keyway's internal error: no reason, status 500, only the error's name shown", () => {
    for (const error of [
      new TypeError("Cannot read properties of undefined (reading 'content')"),
      new RangeError('Maximum call stack size exceeded'),
      new SyntaxError('JSON Parse error'),
      new Error('plain'),
      'a string',
    ]) {
      const failure = foreignFailure('echo', error, 'req_1');
      expect({ code: failure.code, status: failure.status, reason: failure.reason }).toEqual({ code: 'internal_error', status: 500, reason: undefined });
      expect(failure.message).toStartWith('Keyway hit an internal error (');
      expect(failure.message).toEndWith('The request id is req_1.');
    }
    expect(foreignFailure('echo', new TypeError('secret-bearing text')).message).not.toContain('secret-bearing');
  });
});
