// A management route that takes no body refuses one that holds anything, before it acts (QA17): POST
// /v1/settings/webhook-secret with {"secret":"whsec_mine"} replaced the account's signing secret with a
// random one, approve/deny and the price reload ran whatever came with them, malformed JSON and 17 MiB
// included. Every mutating management route of the running gateway whose OpenAPI entry declares no
// request body is covered (read from the document, so a new route is covered the day it lands): a field
// is 400 naming it, malformed JSON 400 invalid_json, an oversized body 413 with its length declared or
// chunked; an empty body or {} is taken.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, expectSpecError, OPERATOR_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { NOT_MANAGEMENT_ROUTES } from '../helpers/management-routes.ts';

/** Small, so an oversized body is quick to send; the rule is the same at the default 16 MiB. */
const LIMIT = 65_536;

let gateway: TestGateway;
let routes: Array<{ method: string; path: string; declaresBody: boolean; bodyRequired: boolean }>;

beforeAll(async () => {
  gateway = await startTestGateway({ probes: false, logLevel: 'warn', env: { KEYWAY_MAX_BODY_BYTES: String(LIMIT) } });
  const document = (await (await call(gateway, 'GET', '/openapi/json')).json()) as {
    paths: Record<string, Record<string, { requestBody?: { required?: boolean } }>>;
  };
  routes = Object.entries(document.paths).flatMap(([pattern, operations]) =>
    Object.entries(operations)
      .map(([method, operation]) => ({ method: method.toUpperCase(), pattern, operation }))
      .filter(({ method, pattern: path }) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method) && !NOT_MANAGEMENT_ROUTES.has(`${method} ${path}`))
      .map(({ method, operation }) => ({
        method,
        // Ids that exist nowhere: a route that got past the body check answers 404 (or its own refusal), never acts.
        path: pattern.replace(/\{\w+\}/g, 'unknown_id').replace(/\*$/, 'unknown_model'),
        declaresBody: operation.requestBody !== undefined,
        bodyRequired: operation.requestBody?.required === true,
      })),
  );
});

afterAll(async () => {
  await gateway.stop();
});

const bodiless = () => routes.filter((route) => !route.declaresBody);

/** A body sent without a declared length (Transfer-Encoding: chunked), `pieces` of 16 KiB of spaces. */
function chunked(pieces: number): ReadableStream<Uint8Array> {
  const piece = new Uint8Array(16 * 1024).fill(0x20);
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === pieces) return controller.close();
      sent++;
      controller.enqueue(piece);
    },
  });
}

const send = (method: string, path: string, body: RequestInit['body'], key = OPERATOR_KEY) =>
  fetch(`${gateway.url}${path}`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });

describe('routes without a body schema', () => {
  test('are found in the document: the ones QA17 named among them, the ones that take a body not', () => {
    const names = bodiless().map((route) => `${route.method} ${route.path}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'POST /v1/settings/webhook-secret',
        'POST /v1/approvals/unknown_id/approve',
        'POST /v1/approvals/unknown_id/deny',
        'POST /v1/platform/prices/reload',
        'DELETE /v1/teams/unknown_id',
      ]),
    );
    // These read a body: each declares it, and the document says which may be left out.
    const declared = (name: string) => routes.find((route) => `${route.method} ${route.path}` === name);
    expect(declared('POST /v1/alerts')).toMatchObject({ declaresBody: true, bodyRequired: true });
    for (const name of ['POST /v1/teams/unknown_id/members/unknown_id/keys', 'POST /v1/reconciliation/run', 'POST /v1/admin/master-key/rotate'])
      expect(declared(name)).toMatchObject({ declaresBody: true, bodyRequired: false });
  });

  test('a body with a field is 400 naming the field', async () => {
    for (const { method, path } of bodiless()) {
      const refused = await expectSpecError(await send(method, path, '{"secret":"whsec_mine","note":"x"}'), 400, 'invalid_field');
      expect({ route: `${method} ${path}`, param: refused.error.param }).toEqual({ route: `${method} ${path}`, param: 'secret' });
      expect(refused.error.message).toContain('this endpoint takes no request body');
    }
  });

  test('a key used as the field name is refused without repeating it', async () => {
    const key = 'sk-proj-UndeclaredBodyFieldNameKey0000000001';
    for (const { method, path } of bodiless()) {
      const response = await send(method, path, JSON.stringify({ [key]: true }));
      const text = await response.text();
      expect(response.status).toBe(400);
      expect(text).not.toContain(key);
      expect(text).toContain('looks like an API key');
    }
  });

  test('malformed JSON is 400 invalid_json; JSON that is no object is 400 too', async () => {
    for (const { method, path } of bodiless()) {
      await expectSpecError(await send(method, path, '{not json'), 400, 'invalid_json');
      const array = await expectSpecError(await send(method, path, '[1]'), 400, 'invalid_request');
      expect(array.error.message).toContain('This endpoint takes no request body');
    }
  });

  test('an oversized body is 413, with its length declared or chunked', async () => {
    for (const { method, path } of bodiless()) {
      await expectSpecError(await send(method, path, ' '.repeat(LIMIT + 1)), 413, 'request_too_large');
      await expectSpecError(await send(method, path, chunked(LIMIT / 16_384 + 1)), 413, 'request_too_large');
    }
  });

  test('no body, an empty one, whitespace or {} is taken: the route answers as it would without one', async () => {
    for (const { method, path } of bodiless()) {
      for (const body of [undefined, '', '  \n', '{}']) {
        const response = await call(gateway, method, path, body);
        const text = await response.text();
        expect({ route: `${method} ${path}`, body, bodyRefused: /takes no request body|invalid_json/.test(text) }).toEqual({
          route: `${method} ${path}`,
          body,
          bodyRefused: false,
        });
      }
    }
  });
});

describe('POST /v1/settings/webhook-secret', () => {
  test('a body is refused and no secret is made; without one a secret is made as before', async () => {
    // An account of its own: the routes above were called for the default account, webhook secret included.
    const account = (await (await call(gateway, 'POST', '/v1/accounts', { name: 'Webhooks' })).json()) as { admin_key: { api_key: string } };
    const admin = { key: account.admin_key.api_key };
    await expectSpecError(await call(gateway, 'POST', '/v1/settings/webhook-secret', { secret: 'whsec_mine' }, admin), 400, 'invalid_field');
    await expectSpecError(await call(gateway, 'POST', '/v1/settings/webhook-secret', 'garbage', admin), 400, 'invalid_json');
    // The refusals made none: the first secret is a creation, not a replacement.
    const first = (await (await call(gateway, 'POST', '/v1/settings/webhook-secret', undefined, admin)).json()) as { secret: string; replaced: boolean };
    expect(first.replaced).toBe(false);
    expect(first.secret).toMatch(/^whsec_/);
    expect(first.secret).not.toBe('whsec_mine');
  });
});
