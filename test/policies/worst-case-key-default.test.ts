// A request that sets no output limit is sent with its key's `max_tokens_default` (the seed's openai key
// has 4000): that is what it can cost, so the worst case approvals and budgets judge uses it, and the
// refusal names it, instead of the model's whole output limit (QA seed L7). Never below what is sent:
// with several candidate keys the largest, and a body that names a limit as null keeps the model's.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { worstCasePlan } from '../../policies/cost-cap/worst-case.ts';
import { call } from '../helpers/gateway.ts';
import { context, key } from './helpers.ts';
import { startTeamGateway, type ErrorBody, type TeamGateway } from './team-fixture.ts';

const KEY_DEFAULT = 4000;
let setup: TeamGateway;

beforeAll(async () => {
  // gpt-4o-mini: 4000 output tokens cost about $0.0024, its whole 16,384 about $0.0098; both above $0.001.
  setup = await startTeamGateway(
    { providers: { openai: { enabled: true, require_approval_above: 0.001 } } },
    { keySettings: { max_tokens_default: KEY_DEFAULT } },
  );
});

afterAll(async () => {
  await setup.stop();
});

const chat = (body: Record<string, unknown>) =>
  call(setup.gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...body }, { key: setup.memberKey });

describe("the key's max_tokens_default bounds the worst case of a request without one", () => {
  test('approval_required reserves and names the key default, not the model limit', async () => {
    const response = await chat({});
    expect(response.status).toBe(403);
    const error = ((await response.json()) as ErrorBody).error;
    expect(error.code).toBe('approval_required');
    expect({ tokens: error.worst_case_output_tokens, from: error.worst_case_output_tokens_from }).toEqual({
      tokens: KEY_DEFAULT,
      from: 'key_max_tokens_default',
    });
    expect(error.message).toContain("Keyway sends the openai key's max_tokens_default of 4,000 tokens in its place");
    expect(error.message).not.toContain('whole output limit');
  });

  test('a body naming max_tokens as null keeps the model limit: an OpenAI upstream gets null, not the default', async () => {
    const error = ((await (await chat({ max_tokens: null })).json()) as ErrorBody).error;
    expect(error.worst_case_output_tokens_from).toBe('model_output_limit');
    expect(error.worst_case_output_tokens as number).toBeGreaterThan(KEY_DEFAULT);
  });

  test('what is sent upstream is that default', async () => {
    const raised = await call(
      setup.gateway,
      'PATCH',
      `/v1/teams/${setup.teamId}`,
      { byok_permissions: { providers: { openai: { require_approval_above: 1 } } } },
      { key: setup.adminKey },
    );
    expect(raised.status).toBe(200);
    const served = await chat({});
    expect(served.status).toBe(200);
    await served.text();
    expect((setup.openai.inferenceRequests().at(-1)?.body as { max_tokens?: number }).max_tokens).toBe(KEY_DEFAULT);
  });
});

describe('several candidate keys', () => {
  test('the plan takes the largest output each key may send, the model limit for a key without a default', () => {
    const pricing = setup.gateway.runtime.services.pricing;
    const planOf = (settings: Array<Record<string, unknown>>) => {
      const request = context();
      request.bodyText = JSON.stringify(request.request);
      request.candidates = settings.map((each, index) => ({ provider: 'openai', model: 'gpt-4o-mini', key: key(`pk_${index}`, 'openai', each) }));
      return worstCasePlan(pricing, request)[0]?.nanos as number;
    };
    const small = planOf([{ max_tokens_default: 100 }]);
    const large = planOf([{ max_tokens_default: 8000 }]);
    const unset = planOf([{}]);
    expect(small).toBeLessThan(large);
    expect(large).toBeLessThan(unset);
    expect(planOf([{ max_tokens_default: 100 }, { max_tokens_default: 8000 }])).toBe(large);
    expect(planOf([{ max_tokens_default: 8000 }, { max_tokens_default: 100 }])).toBe(large);
    expect(planOf([{ max_tokens_default: 100 }, {}])).toBe(unset);
  });
});
