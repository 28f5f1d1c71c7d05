// Account names and gateway key labels follow the rule team names do (core/spec/display-name.ts): not
// blank once trimmed, no control character (they are shown in the dashboard, exports and alert text, where
// a line end or ESC breaks the line they stand on), spaces around them trimmed (QA19 teams, "left undone").

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway.stop();
});

const BAD_NAMES = ['   ', '\u200b\u200b', 'Acme\nInjected: line', 'Acme\u0000', 'Acme\u001b[31m', 'Acme\u2028'];

async function refusal(response: Response): Promise<{ type: string; param: string | null }> {
  expect(response.status).toBe(400);
  return ((await response.json()) as { error: { type: string; param: string | null } }).error;
}

describe('display names', () => {
  test('an account name blank once trimmed or holding a control character is refused, naming the field', async () => {
    for (const name of BAD_NAMES) {
      const error = await refusal(await call(gateway, 'POST', '/v1/accounts', { name }));
      expect(error.type).toBe('invalid_request_error');
      expect(error.param).toBe('name');
    }
    const accounts = (await (await call(gateway, 'GET', '/v1/accounts')).json()) as { accounts?: Array<{ name: string }> } | Array<{ name: string }>;
    const names = (Array.isArray(accounts) ? accounts : (accounts.accounts ?? [])).map((account) => account.name);
    expect(names.some((name) => name.includes('Acme'))).toBe(false);
  });

  test('an account name is stored without the spaces around it', async () => {
    const created = await call(gateway, 'POST', '/v1/accounts', { name: '  Data Platform  ' });
    expect(created.status).toBe(201);
    expect(((await created.json()) as { name: string }).name).toBe('Data Platform');
  });

  test('a key label follows the same rule', async () => {
    for (const name of BAD_NAMES) {
      const error = await refusal(await call(gateway, 'POST', '/v1/keys', { name, role: 'developer' }));
      expect(error.param).toBe('name');
    }
    const created = await call(gateway, 'POST', '/v1/keys', { name: ' ci runner ', role: 'developer' });
    expect(created.status).toBe(201);
    expect(((await created.json()) as { name: string }).name).toBe('ci runner');
  });
});
