// A key a source answers meets the rule hand-entered keys meet (printable ASCII without spaces),
// wherever it enters Keyway: a reference added is a 400 naming `key_reference` with nothing stored, a
// reference resolved at use fails that attempt like any source failure (503 naming the source), and
// trailing line ends are dropped, not refused. Never with the key, or any part of it, in an answer.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { checkedKeySource } from '../../core/credentials/fetched-keys.ts';
import { KEY_MATERIAL_RULE } from '../../core/spec/key-material.ts';
import type { KeySource } from '../../core/spec/key-source.ts';
import { call, expectSpecError, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';
import { scratchDirectory, writeKeyFile } from './fixtures.ts';

const GOOD_KEY = 'sk-proj-KeyMaterialCanary0123456789abcdefghijklmn';
/** A key with one character beyond ASCII, as an editor that "fixed" a file might leave it. */
const ACCENTED_KEY = 'sk-proj-KeyMaterialAccent0123456789abcdéfghijklm';
const KEY_PARTS = ['KeyMaterialCanary', 'KeyMaterialAccent', 'abcdéf', 'ijklm', 'jklmn'];
const context = { accountId: 'acme', provider: 'openai', keyId: 'pk_test' };

function expectNoKeyIn(text: string): void {
  for (const part of KEY_PARTS) expect(text).not.toContain(part);
}

function answering(apiKey: string): KeySource {
  return { name: 'answers', validate: () => undefined, fetch: async () => ({ apiKey, version: '3' }), mint: async () => ({ apiKey }) };
}

async function refusal(source: KeySource): Promise<string> {
  const message = await source.fetch({ source: source.name, locator: 'x' }, context).then(
    () => 'resolved',
    (error: Error) => error.message,
  );
  expectNoKeyIn(message);
  return message;
}

describe('checkedKeySource', () => {
  test('drops trailing line ends (LF, CRLF) and keeps the version', async () => {
    expect(await checkedKeySource(answering(`${GOOD_KEY}\n`)).fetch({ source: 'answers', locator: 'x' }, context)).toEqual({
      apiKey: GOOD_KEY,
      version: '3',
    });
    expect((await checkedKeySource(answering(`${GOOD_KEY}\r\n`)).fetch({ source: 'answers', locator: 'x' }, context)).apiKey).toBe(GOOD_KEY);
    expect((await checkedKeySource(answering(`${GOOD_KEY}\r\n`)).mint?.({ source: 'answers', locator: 'x' }, context))?.apiKey).toBe(GOOD_KEY);
  });

  test('refuses anything else outside the rule, saying what kind of character, never which', async () => {
    expect(await refusal(checkedKeySource(answering(ACCENTED_KEY)))).toBe(`the key it answered ${KEY_MATERIAL_RULE} (it holds a character beyond ASCII)`);
    expect(await refusal(checkedKeySource(answering(`\uFEFF${GOOD_KEY}`)))).toContain('a byte order mark');
    expect(await refusal(checkedKeySource(answering(`${GOOD_KEY} extra`)))).toContain('a space, tab or line break');
    expect(await refusal(checkedKeySource(answering(`${GOOD_KEY}\r\nsecond`)))).toContain('a space, tab or line break');
    expect(await refusal(checkedKeySource(answering(`${GOOD_KEY}\u0000`)))).toContain('a control character');
    expect(await refusal(checkedKeySource(answering('\n')))).toBe('the source answered an empty key');
    const mint = checkedKeySource(answering(ACCENTED_KEY)).mint?.({ source: 'answers', locator: 'x' }, context);
    expect(
      await mint?.then(
        () => 'resolved',
        (error: Error) => error.message,
      ),
    ).toContain(KEY_MATERIAL_RULE);
  });

  test('a source without mint or revoke gets none', () => {
    const checked = checkedKeySource({ name: 'reads', validate: () => undefined, fetch: async () => ({ apiKey: GOOD_KEY }) });
    expect(checked.mint).toBeUndefined();
    expect(checked.revoke).toBeUndefined();
  });
});

describe('file references through the gateway', () => {
  const directory = scratchDirectory();
  let openai: SimulatorHandle;
  let gateway: TestGateway;
  const answers: string[] = [];

  async function addFileReference(locator: string): Promise<Response> {
    return call(
      gateway,
      'POST',
      '/v1/providers/keys',
      { providers: [{ name: 'openai', key_reference: { source: 'file', locator } }] },
      { key: gateway.defaultAdminKey },
    );
  }

  async function listedKeys(): Promise<Array<Record<string, unknown>>> {
    const response = await call(gateway, 'GET', '/v1/providers', undefined, { key: gateway.defaultAdminKey });
    return ((await response.json()) as { providers: Array<Record<string, unknown>> }).providers;
  }

  const chat = () =>
    call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { key: gateway.defaultAdminKey });

  beforeAll(async () => {
    writeKeyFile(directory.path, 'accented.key', `${ACCENTED_KEY}\n`);
    writeKeyFile(directory.path, 'newline.key', `${GOOD_KEY}\n`);
    writeKeyFile(directory.path, 'edited.key', `${GOOD_KEY}\r\n`);
    openai = startOpenAISimulator({ apiKeys: [GOOD_KEY] });
    gateway = await startTestGateway({ env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_KEY_SOURCE_FILE_DIR: directory.path }, probes: false });
  });

  afterAll(async () => {
    await gateway.stop();
    await openai.stop();
    directory.remove();
  });

  test('a file holding a character beyond ASCII: 400 invalid_field naming key_reference, nothing stored', async () => {
    const response = await addFileReference('accented.key');
    const text = await response.clone().text();
    answers.push(text);
    const body = await expectSpecError(response, 400, 'invalid_field');
    expect(body.error.param).toBe('providers[0].key_reference');
    expect(body.error.message).toContain("key source 'file'");
    expect(body.error.message).toContain(KEY_MATERIAL_RULE);
    expect(body.error.message).toContain('a character beyond ASCII');
    expectNoKeyIn(text);
    expect(await listedKeys()).toEqual([]);
  });

  test('a file ending with a line end serves requests with the key alone', async () => {
    const response = await addFileReference('newline.key');
    answers.push(await response.clone().text());
    expect(response.status).toBe(201);
    expect((await chat()).status).toBe(200);
    expect(openai.inferenceRequests().at(-1)?.headers.authorization).toBe(`Bearer ${GOOD_KEY}`);
  });

  test('a file edited to break the rule after it was added fails at use like any source failure', async () => {
    const response = await addFileReference('edited.key');
    expect(response.status).toBe(201);
    const keyId = ((await response.json()) as { providers: Array<{ key_id: string }> }).providers[0]?.key_id as string;
    // The key added before would serve the request: only the edited one is left.
    for (const listed of await listedKeys())
      if (listed.key_id !== keyId) await call(gateway, 'DELETE', `/v1/providers/keys/${listed.key_id}`, undefined, { key: gateway.defaultAdminKey });
    writeKeyFile(directory.path, 'edited.key', `\uFEFF${ACCENTED_KEY}\r\n`);
    gateway.runtime.vault.forget(keyId);
    const failed = await chat();
    const text = await failed.clone().text();
    answers.push(text);
    const body = await expectSpecError(failed, 503, 'no_provider_available');
    expect(body.error.message).toContain("Key source 'file'");
    expect(body.error.message).toContain(KEY_MATERIAL_RULE);
    expectNoKeyIn(text);
  });

  test('no part of a key in any answer or log line', () => {
    for (const answer of answers) expectNoKeyIn(answer);
    expectNoKeyIn(gateway.output.join('\n'));
  });
});
