// The load-balancer examples of docs/deployment.md ("Several instances behind a load balancer"): the
// nginx site, the Caddyfile and each instance's environment come from these functions, which the doc
// shows rendered with the documented addresses and test/deployment/load-balancer.test.ts runs with
// its own. `bun scripts/deployment-examples.ts` rewrites the doc's generated blocks; `--check` exits 1
// when they differ from what the functions render (the test checks the same), so the doc cannot drift.

import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

export interface Instance {
  host: string;
  port: number;
}

export interface BalancerSettings {
  /** What the balancer listens on: `80`, `127.0.0.1:8080`. */
  listen: string;
  instances: readonly Instance[];
  /** Adds `X-Keyway-Upstream: <instance address>` to answers: for tests and debugging, not production. */
  revealUpstream?: boolean;
}

export interface InstanceSettings {
  host: string;
  port: number;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  masterKey: string;
  adminKey: string;
  dataDirectory: string;
  /** The balancer's address, so client addresses are read from X-Forwarded-For. */
  trustedProxies: string;
}

/** An nginx site (an `http {}` include such as /etc/nginx/conf.d/keyway.conf). */
export function nginxSite(settings: BalancerSettings): string {
  const servers = settings.instances.map((instance) => `  server ${instance.host}:${instance.port} max_fails=2 fail_timeout=5s;`).join('\n');
  const reveal = settings.revealUpstream === true ? '\n    add_header X-Keyway-Upstream $upstream_addr always;' : '';
  return `upstream keyway {
  # Streams hold a connection for their whole answer: send new requests where fewest are open.
  least_conn;
${servers}
  keepalive 64;
}

server {
  listen ${settings.listen};
  # Chat requests with images or long contexts are larger than nginx's 1 MB default.
  client_max_body_size 20m;

  location / {
    proxy_pass http://keyway;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    # Server-sent events pass chunk by chunk; a long generation may pause between chunks.
    proxy_buffering off;
    proxy_read_timeout 600s;
    # Retried only when no byte reached the instance (a POST is never sent twice): a stopped or
    # restarting instance is skipped for fail_timeout after max_fails such errors.
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 2;${reveal}
  }
}
`;
}

/** A Caddyfile: Caddy checks GET /ready itself and takes an instance out while it answers 503. */
export function caddyfile(settings: BalancerSettings): string {
  const upstreams = settings.instances.map((instance) => `${instance.host}:${instance.port}`).join(' ');
  const reveal = settings.revealUpstream === true ? '\n\theader_down X-Keyway-Upstream {rp.upstream.hostport}' : '';
  return `${settings.listen.includes(':') ? settings.listen : `:${settings.listen}`} {
\trequest_body {
\t\tmax_size 20MB
\t}
\treverse_proxy ${upstreams} {
\t\tlb_policy least_conn
\t\t# Active health check: an instance whose /ready answers 503 (keys undecryptable, disk full,
\t\t# usage it can keep nowhere) gets no new requests until it answers 200. A shared database or
\t\t# Redis that is down leaves /ready 200 with "degraded": taking every instance out would not help.
\t\thealth_uri /ready
\t\thealth_interval 2s
\t\thealth_timeout 1s
\t\t# Passive: a refused connection is retried on the next instance (nothing was sent yet).
\t\tfail_duration 5s
\t\tlb_try_duration 2s
\t\t# Server-sent events are flushed as they arrive.
\t\tflush_interval -1${reveal}
\t}
}
`;
}

/** One instance's environment; every value but the port and data directory is the same on all of them. */
export function instanceEnvironment(settings: InstanceSettings): Record<string, string> {
  return {
    KEYWAY_HOST: settings.host,
    KEYWAY_PORT: String(settings.port),
    KEYWAY_DATABASE_URL: settings.databaseUrl,
    KEYWAY_REDIS_URL: settings.redisUrl,
    KEYWAY_REDIS_PREFIX: settings.redisPrefix,
    KEYWAY_MASTER_KEY: settings.masterKey,
    KEYWAY_ADMIN_KEY: settings.adminKey,
    KEYWAY_DATA_DIR: settings.dataDirectory,
    KEYWAY_TRUSTED_PROXIES: settings.trustedProxies,
  };
}

export function environmentFile(environment: Record<string, string>): string {
  return `${Object.entries(environment)
    .map(([name, value]) => `${name}=${value}`)
    .join('\n')}\n`;
}

/** The addresses the doc shows. */
export const DOCUMENTED_BALANCER: BalancerSettings = {
  listen: '80',
  instances: [
    { host: '10.0.0.11', port: 8080 },
    { host: '10.0.0.12', port: 8080 },
  ],
};

export const DOCUMENTED_INSTANCE: InstanceSettings = {
  host: '0.0.0.0',
  port: 8080,
  databaseUrl: 'postgres://keyway:<password>@db.internal:5432/keyway',
  redisUrl: 'redis://redis.internal:6379',
  redisPrefix: 'keyway:',
  masterKey: '<the same 32-byte base64 key on every instance: openssl rand -base64 32>',
  adminKey: '<the same operator key on every instance, 32 characters or more: openssl rand -base64 32>',
  dataDirectory: '/var/lib/keyway',
  trustedProxies: '10.0.0.10',
};

const DOC_PATH = resolve(import.meta.dir, '..', 'docs', 'deployment.md');

/** Each generated block of the doc: its marker name and its fenced content. */
export function documentedBlocks(): Array<{ name: string; fence: string; text: string }> {
  return [
    { name: 'nginx', fence: 'nginx', text: nginxSite(DOCUMENTED_BALANCER) },
    { name: 'caddy', fence: 'caddy', text: caddyfile(DOCUMENTED_BALANCER) },
    { name: 'environment', fence: 'sh', text: environmentFile(instanceEnvironment(DOCUMENTED_INSTANCE)) },
  ];
}

function blockPattern(name: string): RegExp {
  return new RegExp(`(<!-- generated: ${name} \\(scripts/deployment-examples\\.ts\\) -->\\n)[\\s\\S]*?(\\n<!-- end generated: ${name} -->)`);
}

/** The doc with every generated block rendered afresh; throws if a marker is missing. */
export function renderDoc(text: string): string {
  let rendered = text;
  for (const block of documentedBlocks()) {
    const pattern = blockPattern(block.name);
    if (!pattern.test(rendered)) throw new Error(`docs/deployment.md has no generated block '${block.name}'`);
    rendered = rendered.replace(pattern, (_, start: string, end: string) => `${start}\`\`\`${block.fence}\n${block.text}\`\`\`${end}`);
  }
  return rendered;
}

if (import.meta.main) {
  const current = readFileSync(DOC_PATH, 'utf8');
  const rendered = renderDoc(current);
  if (process.argv.includes('--check')) {
    if (rendered !== current) {
      console.error('docs/deployment.md is out of date: run bun scripts/deployment-examples.ts');
      process.exit(1);
    }
  } else if (rendered !== current) {
    writeFileSync(DOC_PATH, rendered);
    console.log('docs/deployment.md updated');
  }
}
