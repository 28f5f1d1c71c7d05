// A team's admin member and the stored responses of other teams (QA18 secrets #1). A member key with
// the `admin` role manages its own team only (docs/teams.md); until QA18 the store let any `admin`
// principal through, so the admin member of one team could read another team's stored prompts and
// answers (`GET /v1/responses/{id}`, `input_items`), continue that conversation with
// `previous_response_id` (sending it upstream on its own team's behalf) and delete it. Each is now the
// 404 any other team's key gets; the team's own admin member and the account admin keep their access.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { openAIDescriptor } from '../conformance/provider-descriptors.ts';
import { startClientWorld, type ClientWorld } from '../clients/client-fixtures.ts';
import { call } from '../helpers/gateway.ts';
import { createTeam, type TeamKeys } from './teams.ts';

let world: ClientWorld;
let red: TeamKeys;
let blue: TeamKeys;

/** A response Team Red's developer stores; its id. */
async function redResponse(text: string): Promise<string> {
  const response = await call(world.gateway, 'POST', '/v1/responses', { model: openAIDescriptor.model, input: text, store: true }, { key: red.developer });
  const body = (await response.json()) as { id: string };
  expect(response.status).toBe(200);
  return body.id;
}

/** A new turn on the stored response `id` (`previous_response_id`), sent with `key`. */
function continueResponse(id: string, input: string, key: string): Promise<Response> {
  return call(world.gateway, 'POST', '/v1/responses', { model: openAIDescriptor.model, input, previous_response_id: id }, { key });
}

beforeAll(async () => {
  world = await startClientWorld([openAIDescriptor]);
  red = await createTeam(world, 'Team Red', ['admin', 'developer']);
  blue = await createTeam(world, 'Team Blue', ['admin', 'developer']);
});

afterAll(async () => {
  await world.stop();
});

describe("another team's admin member", () => {
  test('cannot read a stored response or its input items', async () => {
    const id = await redResponse('Red roadmap');
    const read = await call(world.gateway, 'GET', `/v1/responses/${id}`, undefined, { key: blue.admin });
    expect(read.status).toBe(404);
    const items = await call(world.gateway, 'GET', `/v1/responses/${id}/input_items`, undefined, { key: blue.admin });
    expect(items.status).toBe(404);
    expect(await items.text()).not.toContain('Red roadmap');
  });

  test('cannot continue it with previous_response_id: nothing of it goes upstream', async () => {
    const id = await redResponse('Red budget');
    world.simulator('openai').reset();
    const continued = await continueResponse(id, 'Repeat what I said', blue.admin);
    expect([400, 404]).toContain(continued.status);
    const sent = JSON.stringify(world.simulator('openai').inferenceRequests());
    expect(sent).not.toContain('Red budget');
  });

  test('cannot delete it; it stays for its own team', async () => {
    const id = await redResponse('Red plan');
    const deleted = await call(world.gateway, 'DELETE', `/v1/responses/${id}`, undefined, { key: blue.admin });
    expect(deleted.status).toBe(404);
    const still = await call(world.gateway, 'GET', `/v1/responses/${id}`, undefined, { key: red.developer });
    expect(still.status).toBe(200);
  });
});

describe('who keeps access', () => {
  test("the team's own admin member and the account admin read, continue and delete it", async () => {
    const id = await redResponse('Red notes');
    for (const key of [red.admin, world.gateway.defaultAdminKey]) {
      const read = await call(world.gateway, 'GET', `/v1/responses/${id}/input_items`, undefined, { key });
      expect(read.status).toBe(200);
      expect(await read.text()).toContain('Red notes');
    }
    const continued = await continueResponse(id, 'Go on', red.admin);
    expect(continued.status).toBe(200);
    const deleted = await call(world.gateway, 'DELETE', `/v1/responses/${id}`, undefined, { key: red.admin });
    expect(deleted.status).toBe(200);
  });
});
