// Upstream failures of the report calls, in plain words and never with the admin key: driven through
// an injected fetch, as services.fetch is in production.

import { describe, expect, test } from 'bun:test';
import { createLogger } from '../../core/logger.ts';
import { standaloneServices } from '../../core/services.ts';
import { fetchAnthropicReport } from '../../plugins/reconciliation/anthropic-report.ts';
import { fetchOpenAIReport } from '../../plugins/reconciliation/openai-report.ts';
import { ReportError } from '../../plugins/reconciliation/report-fetch.ts';

const ADMIN_KEY = 'sk-admin-CanaryCanaryCanaryCanary0123456789';
const FROM = new Date('2026-12-01T00:00:00Z');
const TO = new Date('2026-12-02T00:00:00Z');

function servicesAnswering(answer: (url: string) => Response | Promise<Response>) {
  const seen: string[] = [];
  const fetcher = (async (input: string | URL | Request) => {
    seen.push(String(input));
    return answer(String(input));
  }) as typeof fetch;
  return { services: standaloneServices({ logger: createLogger('silent'), fetch: fetcher, env: { KEYWAY_OPENAI_BASE_URL: 'http://openai.test/v1' } }), seen };
}

async function failure(promise: Promise<unknown>): Promise<ReportError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ReportError) return error;
    throw error;
  }
  throw new Error('expected the report to fail');
}

describe('report failures', () => {
  test('401 and 403 are admin_key_rejected, without the provider’s words (which can echo the key)', async () => {
    for (const status of [401, 403]) {
      const { services } = servicesAnswering(() => Response.json({ error: { message: `Incorrect API key provided: ${ADMIN_KEY}` } }, { status }));
      const error = await failure(fetchOpenAIReport(services, ADMIN_KEY, FROM, TO));
      expect(error.code).toBe('admin_key_rejected');
      expect(error.message).not.toContain('Canary');
    }
  });

  test('a key of no known shape is scrubbed by value from the provider’s words', async () => {
    const oddKey = 'OddShapedAdminKeyWithoutPrefix0123456789';
    const { services } = servicesAnswering(() => Response.json({ error: { message: `quota for ${oddKey} exceeded` } }, { status: 500 }));
    const error = await failure(fetchOpenAIReport(services, oddKey, FROM, TO));
    expect(error.code).toBe('provider_error');
    expect(error.message).toContain('[REDACTED]');
    expect(error.message).not.toContain(oddKey);
  });

  test('429, 5xx, a dropped connection and a non-JSON answer each say what happened', async () => {
    const cases: Array<[() => Response | Promise<Response>, string]> = [
      [() => Response.json({ error: { message: 'slow down' } }, { status: 429 }), 'provider_rate_limited'],
      [() => Response.json({ error: { message: `boom near ${ADMIN_KEY}` } }, { status: 500 }), 'provider_error'],
      [() => Promise.reject(new Error(`connect ECONNREFUSED with ${ADMIN_KEY}`)), 'provider_unreachable'],
      [() => new Response('<html>gateway</html>', { status: 200 }), 'provider_bad_answer'],
    ];
    for (const [answer, code] of cases) {
      const { services } = servicesAnswering(answer);
      const error = await failure(fetchAnthropicReport(services, ADMIN_KEY, FROM, TO));
      expect(error.code as string).toBe(code);
      expect(error.message).not.toContain('Canary');
    }
  });

  test('OpenAI is read at the operator’s base URL with the documented parameters', async () => {
    const { services, seen } = servicesAnswering(() => Response.json({ object: 'page', data: [], has_more: false, next_page: null }));
    await fetchOpenAIReport(services, ADMIN_KEY, FROM, TO);
    const costs = new URL(seen[0] ?? '');
    expect(`${costs.origin}${costs.pathname}`).toBe('http://openai.test/v1/organization/costs');
    expect(Object.fromEntries(costs.searchParams)).toMatchObject({
      start_time: String(FROM.getTime() / 1000),
      end_time: String(TO.getTime() / 1000),
      bucket_width: '1d',
    });
    expect(costs.searchParams.getAll('group_by')).toEqual(['line_item']);
    const usage = new URL(seen[1] ?? '');
    expect(usage.pathname).toBe('/v1/organization/usage/completions');
    expect(usage.searchParams.getAll('group_by')).toEqual(['model', 'api_key_id']);
  });
});
