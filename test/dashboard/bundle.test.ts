// The dashboard's bundle: the committed generated module is what the sources build to (so it cannot go
// stale), it fits the size budget, and the page it serves loads nothing from elsewhere and runs no inline
// script under a strict Content-Security-Policy.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { gzipSync } from 'node:zlib';
import { DASHBOARD_SCRIPT, DASHBOARD_STYLE, DASHBOARD_VERSION } from '../../plugins/dashboard/assets.generated.ts';
import { buildDashboardAssets } from '../../scripts/build-dashboard.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

/** The budget docs/dashboard.md states: script and style sheet together, gzipped. */
const BUDGET_GZIP_BYTES = 150 * 1024;

describe('dashboard bundle', () => {
  test('the committed bundle matches the sources (run `bun scripts/build-dashboard.ts` after editing plugins/dashboard/ui)', async () => {
    const built = await buildDashboardAssets();
    expect(built.version).toBe(DASHBOARD_VERSION);
    expect(built.script === DASHBOARD_SCRIPT).toBe(true);
    expect(built.style === DASHBOARD_STYLE).toBe(true);
  }, 60_000);

  test(`script and style fit the budget of ${BUDGET_GZIP_BYTES / 1024} KB gzipped`, () => {
    const size = gzipSync(DASHBOARD_SCRIPT).length + gzipSync(DASHBOARD_STYLE).length;
    console.log(`dashboard bundle: ${(size / 1024).toFixed(1)} KB gzipped (${((DASHBOARD_SCRIPT.length + DASHBOARD_STYLE.length) / 1024).toFixed(1)} KB raw)`);
    expect(size).toBeLessThanOrEqual(BUDGET_GZIP_BYTES);
  });

  test('the bundle names no other origin to load from', () => {
    for (const text of [DASHBOARD_SCRIPT, DASHBOARD_STYLE]) {
      expect(text).not.toMatch(/(src|href)\s*=\s*["']https?:\/\//);
      expect(text).not.toMatch(/@import\s+(url\()?["']?https?:/);
      expect(text).not.toMatch(/fetch\(\s*["']https?:/);
    }
  });
});

describe('dashboard page', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway({ probes: false, logLevel: 'warn' });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  test('GET /dashboard is a shell with a strict CSP, no inline script and same-origin assets only', async () => {
    const response = await fetch(`${gateway.url}/dashboard`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    const policy = response.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).not.toContain('unsafe-inline');
    expect(policy).not.toContain('unsafe-eval');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const html = await response.text();
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toContain('src="/dashboard/app.js');
      expect(body?.trim()).toBe('');
    }
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toContain('style=');
  });

  test('the assets are served with their types and long caching (their URL carries the bundle version)', async () => {
    const html = await (await fetch(`${gateway.url}/dashboard`)).text();
    expect(html).toContain(`app.js?v=${DASHBOARD_VERSION}`);
    const script = await fetch(`${gateway.url}/dashboard/app.js?v=${DASHBOARD_VERSION}`);
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect(script.headers.get('cache-control')).toContain('immutable');
    expect(await script.text()).toBe(DASHBOARD_SCRIPT);
    const style = await fetch(`${gateway.url}/dashboard/app.css`);
    expect(style.headers.get('content-type')).toContain('text/css');
    expect(await style.text()).toBe(DASHBOARD_STYLE);
  });
});
