// A member key with an environment, in a team whose provider list shuts a provider out, asking for that
// provider: the refusal is the team's, never "every key belongs to another environment" (QA20). The
// environment policy counted the keys left after every key-resolve hook, so a provider the team's list
// had emptied read as one whose keys were all of another environment, and the answer told the admin to
// add a key for the environment: a fix that changes nothing.

import { afterAll, beforeAll, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { addProviderKeys, call, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import type { SimulatorHandle } from '../simulators/common.ts';
import { startGoogleSimulator } from '../simulators/google.ts';
import { startOpenAISimulator } from '../simulators/openai.ts';

const OPENAI_SHARED = 'sk-proj-EnvTeamProvidersSharedKey000000000001';
const OPENAI_PRODUCTION = 'sk-proj-EnvTeamProvidersProductionKey00000002';
const GOOGLE_SHARED = 'AIzaEnvTeamProvidersSharedKey00000000003';
const HELLO = { model: 'gemini-1.5-pro', max_tokens: 8, messages: [{ role: 'user' as const, content: 'Hello!' }] };

let gateway: TestGateway;
let openai: SimulatorHandle;
let google: SimulatorHandle;
let stagingMember: string;
let plainMember: string;

beforeAll(async () => {
  openai = startOpenAISimulator({ apiKeys: [OPENAI_SHARED, OPENAI_PRODUCTION] });
  google = startGoogleSimulator({ apiKeys: [GOOGLE_SHARED] });
  gateway = await startTestGateway({ probes: false, env: { KEYWAY_OPENAI_BASE_URL: `${openai.url}/v1`, KEYWAY_GOOGLE_BASE_URL: google.url } });
  // A key of another environment on the account is what makes the staging member's keys narrower.
  await addProviderKeys(
    gateway,
    [
      { name: 'openai', api_key: OPENAI_SHARED },
      { name: 'openai', api_key: OPENAI_PRODUCTION, environment: 'production' },
      { name: 'google', api_key: GOOGLE_SHARED },
    ],
    gateway.defaultAdminKey,
  );
  // The seed's rule: Google is listed and turned off.
  const created = await call(
    gateway,
    'POST',
    '/v1/teams',
    {
      name: 'Engineering Team',
      byok_permissions: { providers: { openai: { enabled: true }, google: { enabled: false } } },
      members: [
        { email: 'staging@company.com', role: 'developer', environment: 'staging' },
        { email: 'plain@company.com', role: 'developer' },
      ],
    },
    { key: gateway.defaultAdminKey },
  );
  expect(created.status).toBe(201);
  const members = ((await created.json()) as { members: Array<{ email: string; api_key: string }> }).members;
  stagingMember = members.find((member) => member.email.startsWith('staging'))?.api_key ?? '';
  plainMember = members.find((member) => member.email.startsWith('plain'))?.api_key ?? '';
});

afterAll(async () => {
  await gateway?.stop();
  await openai?.stop();
  await google?.stop();
});

async function refusalOf(memberKey: string): Promise<InstanceType<typeof OpenAI.APIError>> {
  const client = new OpenAI({ apiKey: memberKey, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
  try {
    await client.chat.completions.create(HELLO);
  } catch (error) {
    if (error instanceof OpenAI.APIError) return error;
    throw error;
  }
  throw new Error('the request was served');
}

test('a staging member asking for the provider its team turned off is told the team forbids it, as a member without an environment is', async () => {
  const plain = await refusalOf(plainMember);
  expect(plain.status).toBe(403);
  expect(plain.code).toBe('provider_not_allowed');
  const staging = await refusalOf(stagingMember);
  expect(staging.status).toBe(403);
  expect(staging.code).toBe('provider_not_allowed');
  expect(staging.message).not.toContain('another environment');
  expect(staging.message).toBe(plain.message);
  expect(google.inferenceRequests().length).toBe(0);
});

test('the staging member still uses the shared OpenAI key, never the production one', async () => {
  const client = new OpenAI({ apiKey: stagingMember, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
  const answer = await client.chat.completions.create({ ...HELLO, model: 'gpt-4o-mini' }).withResponse();
  expect(answer.response.status).toBe(200);
  const served = openai.inferenceRequests().at(-1);
  expect(served?.headers.authorization).toBe(`Bearer ${OPENAI_SHARED}`);
});
