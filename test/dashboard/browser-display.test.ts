// What the dashboard shows, checked in Chromium against what the API answers: the Overview's error rate
// (each refused request counted once), small amounts that keep their digits, chart axes whose labels
// never repeat, the Usage page at a phone's width, the skip link, and a session that ends under the
// page (its key revoked) taking the user back to the sign-in screen.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser } from 'playwright-core';
import { call } from '../helpers/gateway.ts';
import { open, settled, signIn, startBrowserSuite, stopBrowserSuite, visit } from './browser-kit.ts';
import { CHROMIUM, chromiumMissing, type DashboardFixture } from './fixture.ts';

/** The page's document and window, as the functions passed to page.evaluate see them (no DOM types here). */
interface Box {
  left: number;
  right: number;
}
declare const document: {
  activeElement: { id: string } | null;
  documentElement: { scrollWidth: number };
  querySelectorAll(selector: string): Array<{ getBoundingClientRect(): Box }>;
};
declare const window: { innerWidth: number; keywayDrawn?: () => string[][] };
declare const location: { hash: string };

interface Analytics {
  total_requests: number;
  unserved_requests: number;
  errors: number;
}

let fixture: DashboardFixture;
let browser: Browser;

if (chromiumMissing) console.warn(`test/dashboard/browser-display.test.ts skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does it).`);

/**
 * Records the value-axis labels every chart canvas draws, from its last full clear on: uPlot draws its
 * axis labels on the canvas, so this is what the user reads there. Those of the value axis on the left
 * are the ones drawn right-aligned and vertically centred (the time axis's are centred, top or bottom).
 * Installed before the page's own script.
 */
const RECORD_CANVAS_TEXT = `(() => {
  const drawn = new WeakMap();
  const clear = CanvasRenderingContext2D.prototype.clearRect;
  CanvasRenderingContext2D.prototype.clearRect = function (x, y, ...rest) {
    if (x === 0 && y === 0) drawn.set(this.canvas, []);
    return clear.call(this, x, y, ...rest);
  };
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    if (this.textAlign === 'right' && this.textBaseline === 'middle') {
      const list = drawn.get(this.canvas) ?? [];
      list.push(String(text));
      drawn.set(this.canvas, list);
    }
    return fill.call(this, text, ...rest);
  };
  window.keywayDrawn = () => [...document.querySelectorAll('.chart canvas')].map((canvas) => drawn.get(canvas) ?? []);
})();`;

/** An amount as the page prints it ("$0.00001812", "$1,234.56") read back as a number. */
const amount = (text: string): number => Number(text.replace(/[$,\s]/g, ''));

describe.skipIf(chromiumMissing)('dashboard figures in Chromium', () => {
  beforeAll(async () => {
    // One request served a day at most: a value axis from 0 to 1 request is where fractional steps showed.
    ({ fixture, browser } = await startBrowserSuite({ servedRequests: 1 }));
  }, 60_000);

  afterAll(() => stopBrowserSuite({ browser, fixture }));

  test("the Overview's error rate counts a refused request once: errors already include refusals (docs/analytics.md)", async () => {
    const today = (await (await call(fixture.gateway, 'GET', '/v1/analytics/byok?period=today', undefined, { key: fixture.adminKey })).json()) as Analytics;
    // One request served, one held for approval (refused, 403).
    expect(today).toMatchObject({ total_requests: 1, unserved_requests: 1, errors: 1 });
    const watched = await open(browser);
    await signIn(watched, fixture.gateway.url, fixture.adminKey);
    const stat = watched.page.locator('.stat', { hasText: 'Error rate today' });
    expect(await stat.locator('.stat-value').textContent()).toBe('50.0 %');
    expect(await stat.locator('.stat-detail').textContent()).toBe('1 failed or refused');
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);

  test('amounts under a cent keep their digits, and no chart repeats a label on its value axis', async () => {
    const watched = await open(browser);
    await watched.context.addInitScript(RECORD_CANVAS_TEXT);
    const { page } = watched;
    await signIn(watched, fixture.gateway.url, fixture.adminKey);
    await visit(page, 'Usage');
    const comparison = (await (
      await call(fixture.gateway, 'GET', '/v1/analytics/cost-comparison?period=current_month', undefined, { key: fixture.adminKey })
    ).json()) as {
      savings: number;
    };
    // A short request costs a few thousandths of a cent; the reseller's markup on it is smaller still.
    expect(comparison.savings).toBeGreaterThan(0);
    expect(comparison.savings).toBeLessThan(0.00005);
    const savings = (await page.locator('.stat', { hasText: 'Savings' }).locator('.stat-value').textContent()) ?? '';
    expect(savings).not.toBe('$0.00');
    expect(Math.abs(amount(savings) - comparison.savings) / comparison.savings).toBeLessThan(0.001);
    const cost = (await page.locator('.stat', { hasText: 'Cost' }).first().locator('.stat-value').textContent()) ?? '';
    expect(amount(cost)).toBeGreaterThan(0);

    await page.waitForFunction(() => (window.keywayDrawn?.() ?? []).filter((texts) => texts.length > 0).length === 2);
    const [costAxis, requestAxis] = (await page.evaluate(() => window.keywayDrawn?.() ?? [])) as string[][];
    expect(costAxis?.length).toBeGreaterThanOrEqual(2);
    expect(requestAxis?.length).toBeGreaterThanOrEqual(2);
    for (const labels of [costAxis ?? [], requestAxis ?? []]) expect(labels).toEqual([...new Set(labels)]);
    // A request count is whole: the request chart's axis has no half requests.
    for (const label of requestAxis ?? []) expect(Number(label.replace(/,/g, ''))).toBe(Math.round(Number(label.replace(/,/g, ''))));
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);

  test("at a phone's width (375 px) the Usage page's cards fit the screen", async () => {
    const watched = await open(browser, { width: 375, height: 740 });
    const { page } = watched;
    await signIn(watched, fixture.gateway.url, fixture.adminKey);
    await visit(page, 'Usage');
    await page.locator('.chart canvas').first().waitFor();
    const widths = await page.evaluate(() => ({
      viewport: window.innerWidth,
      page: document.documentElement.scrollWidth,
      cards: [...document.querySelectorAll('section.card, .stat')].map((card) => card.getBoundingClientRect()),
    }));
    expect(widths.page).toBeLessThanOrEqual(widths.viewport);
    for (const card of widths.cards) {
      expect(card.left).toBeGreaterThanOrEqual(0);
      expect(card.right).toBeLessThanOrEqual(widths.viewport);
    }
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);

  test('"Skip to content" moves focus to the page\'s content and stays on the page', async () => {
    const watched = await open(browser);
    const { page } = watched;
    await signIn(watched, fixture.gateway.url, fixture.adminKey);
    await visit(page, 'Teams');
    await page.getByRole('link', { name: 'Skip to content' }).focus();
    await page.keyboard.press('Enter');
    await settled(page);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
    expect(await page.evaluate(() => location.hash)).toBe('#/teams');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Teams');
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);

  test('a session that ends under the page (its key revoked) returns to the sign-in screen with a message', async () => {
    const created = (await (
      await call(fixture.gateway, 'POST', '/v1/keys', { name: 'short-lived admin', role: 'admin' }, { key: fixture.adminKey })
    ).json()) as {
      id: string;
      api_key: string;
    };
    const watched = await open(browser);
    const { page } = watched;
    await signIn(watched, fixture.gateway.url, created.api_key);
    expect((await call(fixture.gateway, 'DELETE', `/v1/keys/${created.id}`, undefined, { key: fixture.adminKey })).status).toBe(204);
    await page.getByRole('navigation').getByRole('link', { name: 'Teams', exact: true }).click();
    await page.getByLabel('Gateway key').waitFor();
    await page.getByText('Your session ended; sign in again.').waitFor();
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
    expect(await page.getByText('Invalid or missing API key').count()).toBe(0);
    // The API's 401 is the only thing that went wrong; signing in again opens the page the user asked for.
    expect(watched.problems.length).toBeGreaterThan(0);
    for (const problem of watched.problems)
      expect(problem).toMatch(/^(HTTP 401: GET |console error: Failed to load resource: the server responded with a status of 401)/);
    watched.problems.length = 0;
    await page.getByLabel('Gateway key').fill(fixture.adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Teams', exact: true }).waitFor();
    await settled(page);
    expect(await page.getByText('Your session ended').count()).toBe(0);
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);
});
