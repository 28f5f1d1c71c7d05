// A strict simulator of HashiCorp Vault's KV secrets engine, version 2, over HTTP, as the API
// documentation describes it: `GET /v1/{mount}/data/{path}[?version=N]` answers
// `{data: {data, metadata: {version, created_time, deletion_time, destroyed, custom_metadata}}}`;
// `POST`/`PUT` on the same path with `{data: {...}}` writes a new version. Like Vault it answers 403
// `{"errors":["permission denied"]}` for a missing, unknown or out-of-policy token (or the wrong
// namespace), 404 `{"errors":[]}` for a missing secret or an unknown version, 404 with the version's
// metadata for a deleted or destroyed one, 404 "no handler for route" for an unknown mount, and 400
// for a version that is not an integer. Tokens may be limited to path prefixes (a Vault policy's paths).

import { randomUUID } from 'node:crypto';

export interface VaultToken {
  token: string;
  /** `mount/path` prefixes the token may read; undefined: everything (a root token). */
  paths?: string[];
}

export interface VaultSimulatorOptions {
  tokens: VaultToken[];
  /** When set, requests must carry this X-Vault-Namespace (tokens live in it). */
  namespace?: string;
  mounts?: string[];
}

interface Version {
  data: Record<string, unknown>;
  createdTime: string;
  deletionTime: string;
  destroyed: boolean;
}

export interface VaultRequestRecord {
  method: string;
  path: string;
  version: string | null;
  namespace: string | null;
  /** Whether a token was sent (never the token). */
  tokenSent: boolean;
}

export interface VaultSimulator {
  url: string;
  requests: VaultRequestRecord[];
  /** Writes a new version and returns its number. */
  put(mount: string, path: string, data: Record<string, unknown>): number;
  deleteVersion(mount: string, path: string, version: number): void;
  destroyVersion(mount: string, path: string, version: number): void;
  stop(): Promise<void>;
}

const json = (body: unknown, status = 200): Response => Response.json(body, { status, headers: { 'Cache-Control': 'no-store' } });
const denied = (): Response => json({ errors: ['permission denied'] }, 403);

function envelope(data: unknown): Record<string, unknown> {
  return { request_id: randomUUID(), lease_id: '', renewable: false, lease_duration: 0, data, wrap_info: null, warnings: null, auth: null, mount_type: 'kv' };
}

function metadataOf(version: Version, number: number): Record<string, unknown> {
  return { created_time: version.createdTime, custom_metadata: null, deletion_time: version.deletionTime, destroyed: version.destroyed, version: number };
}

export function startVaultSimulator(options: VaultSimulatorOptions): VaultSimulator {
  const mounts = new Set(options.mounts ?? ['secret']);
  const secrets = new Map<string, Version[]>();
  const requests: VaultRequestRecord[] = [];
  const versionsOf = (mount: string, path: string): Version[] => {
    const key = `${mount}/${path}`;
    let versions = secrets.get(key);
    if (versions === undefined) secrets.set(key, (versions = []));
    return versions;
  };
  const write = (mount: string, path: string, data: Record<string, unknown>): number => {
    const versions = versionsOf(mount, path);
    versions.push({ data: structuredClone(data), createdTime: new Date().toISOString(), deletionTime: '', destroyed: false });
    return versions.length;
  };

  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      const url = new URL(request.url);
      const namespace = request.headers.get('x-vault-namespace');
      const token = request.headers.get('x-vault-token');
      requests.push({ method: request.method, path: url.pathname, version: url.searchParams.get('version'), namespace, tokenSent: token !== null });
      if (url.pathname === '/v1/sys/health') return json({ initialized: true, sealed: false, standby: false, version: '1.15.0-sim' });
      const grant = options.tokens.find((entry) => entry.token === token);
      if (token === null || token === '' || grant === undefined) return denied();
      if ((options.namespace ?? null) !== (namespace === null ? null : namespace.replace(/\/+$/, ''))) return denied();
      const match = /^\/v1\/([^/]+)\/data\/(.+)$/.exec(url.pathname);
      const mount = match?.[1];
      if (match === null || mount === undefined || !mounts.has(mount)) {
        const route = url.pathname.replace(/^\/v1\//, '');
        return json({ errors: [`no handler for route "${route}". route entry not found.`] }, 404);
      }
      const path = decodeURIComponent(match[2] as string);
      if (grant.paths !== undefined && !grant.paths.some((prefix) => `${mount}/${path}`.startsWith(prefix))) return denied();
      if (request.method === 'POST' || request.method === 'PUT') {
        const body = (await request.json().catch(() => undefined)) as { data?: unknown } | undefined;
        if (body?.data === null || typeof body?.data !== 'object') return json({ errors: ['no data provided'] }, 400);
        const version = write(mount, path, body.data as Record<string, unknown>);
        return json(envelope(metadataOf(versionsOf(mount, path)[version - 1] as Version, version)));
      }
      if (request.method !== 'GET') return json({ errors: [`unsupported operation`] }, 405);
      const versions = secrets.get(`${mount}/${path}`) ?? [];
      if (versions.length === 0) return json({ errors: [] }, 404);
      const asked = url.searchParams.get('version');
      let number = versions.length;
      if (asked !== null && asked !== '0') {
        if (!/^\d+$/.test(asked)) return json({ errors: [`error parsing version: strconv.Atoi: parsing "${asked}": invalid syntax`] }, 400);
        number = Number(asked);
      }
      const version = versions[number - 1];
      if (version === undefined) return json({ errors: [] }, 404);
      if (version.deletionTime !== '' || version.destroyed) return json(envelope({ data: null, metadata: metadataOf(version, number) }), 404);
      return json(envelope({ data: structuredClone(version.data), metadata: metadataOf(version, number) }));
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    put: write,
    deleteVersion(mount, path, version) {
      const entry = secrets.get(`${mount}/${path}`)?.[version - 1];
      if (entry !== undefined) entry.deletionTime = new Date().toISOString();
    },
    destroyVersion(mount, path, version) {
      const entry = secrets.get(`${mount}/${path}`)?.[version - 1];
      if (entry !== undefined) {
        entry.destroyed = true;
        entry.data = {};
      }
    },
    stop: async () => {
      await server.stop(true);
    },
  };
}
