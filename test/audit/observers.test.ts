// The core's side of auditing: secrets are stripped before any observer sees an action, and an
// observer that throws or rejects never changes or breaks the route's answer.

import { describe, expect, test } from 'bun:test';
import { scrubSecrets } from '../../core/http/kit/audit-trail.ts';
import type { AdminAction, PluginDefinition } from '../../core/spec/plugin.ts';
import { call, startTestGateway } from '../helpers/gateway.ts';

describe('scrubSecrets', () => {
  test('secret-named fields lose their text whatever it looks like; masked keys, ids and other text stay', () => {
    const scrubbed = scrubSecrets({
      api_key: 'plainwordswithoutanyshape',
      new_api_key: 'anothershapelesssecret',
      webhook_secret: 'whsec-something',
      keys: ['one-shapeless-secret', { id: 'key_1', masked_key: 'sk-proj-…abcd' }],
      nested: { admin_key: { id: 'key_2', api_key: 'kw_ak_deeplynestedsecret0123456789' }, note: 'carried sk-proj-LEAKEDxKEYx0123456789 in text' },
      max_tokens: 100,
      tokens_per_minute: 10,
      fingerprint: 'sha256:9f86d081884c7d65',
    });
    expect(scrubbed).toEqual({
      api_key: '[REDACTED]',
      new_api_key: '[REDACTED]',
      webhook_secret: '[REDACTED]',
      keys: ['[REDACTED]', { id: 'key_1', masked_key: 'sk-proj-…abcd' }],
      nested: { admin_key: { id: 'key_2', api_key: '[REDACTED]' }, note: 'carried [REDACTED] in text' },
      max_tokens: 100,
      tokens_per_minute: 10,
      fingerprint: 'sha256:9f86d081884c7d65',
    });
  });
});

describe('observers', () => {
  test('a throwing and a rejecting observer are logged; the answer is unchanged and the others still see the action', async () => {
    const seen: AdminAction[] = [];
    const observers = (name: string, observe: (action: AdminAction) => void | Promise<void>): PluginDefinition => ({
      name,
      version: '1.0.0',
      apiVersion: 1,
      kind: 'extension',
      setup: () => ({ adminActions: observe }),
    });
    const gateway = await startTestGateway({
      probes: false,
      extraPlugins: [
        {
          definition: observers('throwing-observer', () => {
            throw new Error('observer exploded');
          }),
          source: 'test',
        },
        { definition: observers('rejecting-observer', async () => Promise.reject(new Error('observer rejected'))), source: 'test' },
        { definition: observers('recording-observer', (action) => void seen.push(action)), source: 'test' },
      ],
    });
    try {
      const response = await call(gateway, 'POST', '/v1/keys', { name: 'observed' }, { key: gateway.defaultAdminKey });
      expect(response.status).toBe(201);
      expect(((await response.json()) as { api_key: string }).api_key).toStartWith('kw_ak_');
      expect(
        seen.map((action) => ({ route: action.route, method: action.method, status: action.status, role: action.actor.role, routeRole: action.routeRole })),
      ).toEqual([{ route: '/v1/keys', method: 'POST', status: 201, role: 'admin', routeRole: 'admin' }]);
      expect((seen[0]?.after as { api_key: string }).api_key).toBe('[REDACTED]');
      await Bun.sleep(5);
      const logged = gateway.output.join('\n');
      expect(logged).toContain('observer exploded');
      expect(logged).toContain('observer rejected');
      // Inference never reaches an observer.
      await call(gateway, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
      expect(seen.length).toBe(1);
    } finally {
      await gateway.stop();
    }
  });
});
