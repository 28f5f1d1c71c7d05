// The methods a path takes, from the registered routes: parameters, optional parameters, wildcards,
// trailing slashes, HEAD with GET, and the framework's non-HTTP entries left out.

import { describe, expect, test } from 'bun:test';
import { createAllowedMethods, type RegisteredRoute } from '../../core/http/allowed-methods.ts';

describe('createAllowedMethods', () => {
  const routes: RegisteredRoute[] = [
    { method: 'POST', path: '/v1/teams' },
    { method: 'GET', path: '/v1/teams' },
    { method: 'PATCH', path: '/v1/teams/:id' },
    { method: 'DELETE', path: '/v1/teams/:id' },
    { method: 'GET', path: '/v1/models/*' },
    { method: 'GET', path: '/v1/files/:id/:part?' },
    { method: 'WS', path: '/v1/socket' },
    { method: 'ALL', path: '/v1/anything' },
    { method: 'GET', path: '/v1/a.b' },
  ];
  const allowed = createAllowedMethods(() => routes);

  test('static paths, parameters and a trailing slash', () => {
    expect(allowed('/v1/teams')).toEqual(['GET', 'HEAD', 'POST']);
    expect(allowed('/v1/teams/')).toEqual(['GET', 'HEAD', 'POST']);
    expect(allowed('/v1/teams/team_1')).toEqual(['DELETE', 'PATCH']);
    expect(allowed('/v1/teams/team_1/members')).toEqual([]);
  });

  test('wildcards and optional parameters', () => {
    expect(allowed('/v1/models/openai/gpt-4o')).toEqual(['GET', 'HEAD']);
    expect(allowed('/v1/files/f1')).toEqual(['GET', 'HEAD']);
    expect(allowed('/v1/files/f1/content')).toEqual(['GET', 'HEAD']);
    expect(allowed('/v1/files/f1/content/more')).toEqual([]);
  });

  test('literal characters stay literal; non-HTTP entries are not methods', () => {
    expect(allowed('/v1/a.b')).toEqual(['GET', 'HEAD']);
    expect(allowed('/v1/aXb')).toEqual([]);
    expect(allowed('/v1/socket')).toEqual([]);
    expect(allowed('/v1/anything')).toEqual([]);
  });

  test('routes registered later are seen', () => {
    routes.push({ method: 'PUT', path: '/v1/late' });
    expect(allowed('/v1/late')).toEqual(['PUT']);
  });
});
