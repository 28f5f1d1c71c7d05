import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPooledFetch } from '../../core/wire/http1/client.ts';

// A self-signed certificate made at test time, for localhost and 127.0.0.1, and one for another name.
const directory = mkdtempSync(join(tmpdir(), 'keyway-http1-tls-'));
let server: ReturnType<typeof Bun.serve>;
let elsewhere: ReturnType<typeof Bun.serve>;
let certificate = '';
let otherCertificate = '';

function makeCertificate(name: string, altNames: string): { cert: string; key: string } {
  const cert = join(directory, `${name}.pem`);
  const key = join(directory, `${name}.key`);
  const made = Bun.spawnSync(
    [
      'openssl',
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=${altNames}`,
    ],
    { stderr: 'pipe' },
  );
  if (made.exitCode !== 0) throw new Error(`openssl failed: ${made.stderr.toString()}`);
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

beforeAll(() => {
  const local = makeCertificate('localhost', 'DNS:localhost,IP:127.0.0.1');
  const other = makeCertificate('other.invalid', 'DNS:other.invalid');
  certificate = local.cert;
  otherCertificate = other.cert;
  const answer = (request: Request): Response => new Response(`secure ${request.method} ${new URL(request.url).pathname}`);
  server = Bun.serve({ port: 0, hostname: '127.0.0.1', tls: local, fetch: answer });
  elsewhere = Bun.serve({ port: 0, hostname: '127.0.0.1', tls: other, fetch: answer });
});

afterAll(() => {
  server.stop(true);
  elsewhere.stop(true);
  rmSync(directory, { recursive: true, force: true });
});

test('https with a trusted certificate, connections reused', async () => {
  const pooled = createPooledFetch({ environment: {}, tls: { ca: certificate } });
  for (const host of ['localhost', '127.0.0.1']) {
    const response = await pooled(`https://${host}:${server.port}/v1/models`, { redirect: 'manual' });
    expect(await response.text()).toBe('secure GET /v1/models');
  }
  await (await pooled(`https://localhost:${server.port}/again`, { redirect: 'manual', method: 'POST', body: 'x' })).text();
  expect(pooled.pool.idleCount()).toBe(2);
  pooled.close();
});

test('a certificate nobody trusts is refused, with the verifier’s code', async () => {
  const pooled = createPooledFetch({ environment: {} });
  const error = await pooled(`https://localhost:${server.port}/`, { redirect: 'manual' }).catch((failure: unknown) => failure);
  expect(error).toBeInstanceOf(TypeError);
  expect((error as { code?: string }).code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  pooled.close();
});

test('a trusted certificate for another name is refused', async () => {
  const pooled = createPooledFetch({ environment: {}, tls: { ca: otherCertificate } });
  const error = await pooled(`https://localhost:${elsewhere.port}/`, { redirect: 'manual' }).catch((failure: unknown) => failure);
  expect((error as { code?: string }).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  pooled.close();
});

test('NODE_EXTRA_CA_CERTS is honoured, as fetch honours it', async () => {
  const caFile = join(directory, 'localhost.pem');
  const script = `
    import { createPooledFetch } from ${JSON.stringify(join(import.meta.dir, '../../core/wire/http1/client.ts'))};
    const pooled = createPooledFetch({ environment: {} });
    const response = await pooled('https://localhost:${server.port}/extra', { redirect: 'manual' });
    console.log(await response.text());
    pooled.close();
  `;
  // Asynchronous: the server answering the child runs in this process.
  const child = Bun.spawn([process.execPath, '-e', script], { env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile }, stdout: 'pipe', stderr: 'pipe' });
  const output = await new Response(child.stdout).text();
  await child.exited;
  expect(output.trim()).toBe('secure GET /extra');
});
