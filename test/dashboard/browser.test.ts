// The dashboard in a real browser (Debian's Chromium through playwright-core, no download): sign-in
// and sign-out, every page with no console error and no failed request, the main flows, what a
// viewer and a team member see, and no secret in cookies readable by script, storage or the page.
// Screenshots of every page go to $TMPDIR/keyway-dashboard-screenshots (KEYWAY_UPDATE_SCREENSHOTS=1
// also refreshes the ones docs/images keeps for the README).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { call } from '../helpers/gateway.ts';
import { open as openPage, PAGES, settled, signIn as signInAt, visit, startBrowserSuite, stopBrowserSuite, type Watched } from './browser-kit.ts';
import { CHROMIUM, chromiumMissing, SECOND_OPENAI_KEY, type DashboardFixture } from './fixture.ts';

/** The page's document, as the functions passed to page.evaluate see it (this project compiles without DOM types). */
interface PageElement {
  textContent: string | null;
  id: string;
  outerHTML: string;
  dataset: Record<string, string | undefined>;
}
declare const document: {
  cookie: string;
  documentElement: PageElement;
  activeElement: PageElement | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { length: number };
};

const SHOTS = join(tmpdir(), 'keyway-dashboard-screenshots');
const README_SHOTS = new Set(['admin-overview', 'admin-usage', 'admin-providers', 'admin-teams', 'admin-overview-dark']);

if (chromiumMissing) console.warn(`test/dashboard/browser.test.ts skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does it).`);

let fixture: DashboardFixture;
let browser: Browser;

const signIn = (watched: Watched, key: string): Promise<void> => signInAt(watched, fixture.gateway.url, key);
const open = (): Promise<Watched> => openPage(browser);

async function shoot(page: Page, name: string): Promise<void> {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  if (process.env.KEYWAY_UPDATE_SCREENSHOTS === '1' && README_SHOTS.has(name))
    copyFileSync(path, join(import.meta.dir, '..', '..', 'docs', 'images', `dashboard-${name}.png`));
}

/** Every place a script or a saved page could read a secret from. */
async function readable(page: Page): Promise<string> {
  return page.evaluate(() => {
    const stores = [localStorage, sessionStorage].map((store) => Object.keys(store).map((key) => `${key}=${store.getItem(key)}`));
    return [document.cookie, document.documentElement.outerHTML, ...stores.flat()].join('\n');
  });
}

describe.skipIf(chromiumMissing)('dashboard in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    if (process.env.KEYWAY_UPDATE_SCREENSHOTS === '1') mkdirSync(join(import.meta.dir, '..', '..', 'docs', 'images'), { recursive: true });
    ({ fixture, browser } = await startBrowserSuite());
  }, 60_000);

  afterAll(() => stopBrowserSuite({ browser, fixture }));

  test('an admin signs in, every page loads cleanly, nothing secret is readable, and sign-out ends the session on the server', async () => {
    const watched = await open();
    const { page, context } = watched;
    await page.goto(`${fixture.gateway.url}/dashboard`);
    await page.getByLabel('Gateway key').waitFor();
    await shoot(page, 'sign-in');
    await signIn(watched, fixture.adminKey);
    const cookies = await context.cookies();
    const session = cookies.find((cookie) => cookie.name === 'keyway_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    for (const name of PAGES) {
      await visit(page, name);
      await shoot(page, `admin-${name.toLowerCase().replace(' ', '-')}`);
      const exposed = await readable(page);
      expect(exposed).not.toContain(fixture.adminKey);
      expect(exposed).not.toContain(session?.value ?? 'no session');
      expect(exposed).not.toContain(fixture.memberKey);
    }
    await visit(page, 'Overview');
    // The Overview's figures: spend, requests, error rate, fallbacks, latency (issue 14).
    for (const label of ['Spend today', 'Requests today', 'Error rate today', 'Fallbacks today', 'Average latency'])
      await page.getByText(label, { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Dark theme' }).click();
    await shoot(page, 'admin-overview-dark');
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    // Keyboard: the first focusable element is the skip link, which moves focus to the content; a
    // navigation link opens its page with Enter, and Tab walks from one link to the next.
    expect(await page.evaluate(() => document.querySelector('a[href], button, input, select, textarea')?.textContent)).toBe('Skip to content');
    await page.getByRole('link', { name: 'Skip to content' }).focus();
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
    await page.getByRole('navigation').getByRole('link', { name: 'Teams', exact: true }).focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Approvals');
    await page.getByRole('navigation').getByRole('link', { name: 'Usage', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Usage', exact: true }).waitFor();
    const csrf = await page.evaluate(async () => ((await (await fetch('/dashboard/session')).json()) as { csrf_token: string }).csrf_token);
    const asSession = { cookie: `keyway_session=${session?.value}`, 'x-keyway-csrf': csrf };
    expect((await fetch(`${fixture.gateway.url}/v1/teams`, { headers: asSession })).status).toBe(200);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Gateway key').waitFor();
    expect((await fetch(`${fixture.gateway.url}/v1/teams`, { headers: asSession })).status).toBe(401);
    expect((await context.cookies()).some((cookie) => cookie.name === 'keyway_session')).toBe(false);
    expect(watched.problems).toEqual([]);
    await context.close();
  }, 60_000);

  test('the Overview paints its figures fast (measured with the Performance API)', async () => {
    const watched = await open();
    await signIn(watched, fixture.adminKey);
    const runs: number[] = [];
    for (let run = 0; run < 5; run += 1) {
      // A new document each run (a query string), so nothing of the last run is reused but the HTTP cache.
      await watched.page.goto(`${fixture.gateway.url}/dashboard?run=${run}#/overview`);
      // The page marks the moment the Overview's figures were first rendered (navigation start = 0), one
      // frame after they were committed: wait for the mark itself.
      await watched.page.waitForFunction(() => performance.getEntriesByName('keyway:overview-figures').length > 0);
      runs.push(await watched.page.evaluate(() => performance.getEntriesByName('keyway:overview-figures')[0]?.startTime ?? 0));
      // Let the rest of the page finish before the next run navigates away (an aborted fetch is a failure).
      await settled(watched.page);
    }
    const paint = await watched.page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
    const sorted = [...runs].sort((left, right) => left - right);
    const median = sorted[2] ?? 0;
    const report = {
      overview_figures_ms: runs.map(Math.round),
      median_ms: Math.round(median),
      first_contentful_paint_ms: paint === null ? null : Math.round(paint),
    };
    writeFileSync(join(SHOTS, 'overview-timing.json'), JSON.stringify(report, null, 2));
    console.log(`dashboard Overview timing: ${JSON.stringify(report)}`);
    // A sanity bound only (the 300 ms target is reported above, not asserted: CI machines vary).
    expect(median).toBeLessThan(5000);
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);

  test('main flows: add a provider key, create a team and see its member key once, approve a request, create a cost alert, export usage as CSV', async () => {
    const watched = await open();
    const { page } = watched;
    page.on('dialog', (dialog) => void dialog.accept());
    await signIn(watched, fixture.adminKey);

    await visit(page, 'Providers');
    const form = page.getByRole('form', { name: 'Add a provider key' });
    await form.getByLabel('Provider').fill('openai');
    await form.getByLabel('API key').fill(SECOND_OPENAI_KEY);
    await form.getByRole('button', { name: 'Add key' }).click();
    await page.getByRole('cell', { name: 'sk-p…0002' }).or(page.getByText(/0002/)).first().waitFor();
    expect(await page.content()).not.toContain(SECOND_OPENAI_KEY);
    const keys = (await (await call(fixture.gateway, 'GET', '/v1/providers', undefined, { key: fixture.adminKey })).json()) as { providers: unknown[] };
    expect(keys.providers).toHaveLength(2);

    await visit(page, 'Teams');
    const teamForm = page.getByRole('form', { name: 'Create a team' });
    await teamForm.getByLabel('Team name').fill('Research');
    await teamForm.getByLabel('Members').fill('ana@company.com developer');
    await teamForm.getByRole('button', { name: 'Create team' }).click();
    const issued = page.locator('.issued code.secret');
    await issued.waitFor();
    const memberKey = (await issued.textContent()) ?? '';
    expect(memberKey).toMatch(/^kw_mk_/);
    expect((await call(fixture.gateway, 'GET', '/v1/usage/me', undefined, { key: memberKey })).status).toBe(200);
    await shoot(page, 'admin-teams-created');
    await page.getByRole('button', { name: 'I have copied them' }).click();
    const addMember = page.getByRole('form', { name: 'Add a member to Research' });
    await addMember.getByLabel('Member email').fill('ben@company.com');
    await addMember.getByRole('button', { name: 'Add member' }).click();
    await page.getByText(/ben@company\.com \(developer\): kw_mk_/).waitFor();
    const secondKey = ((await issued.textContent()) ?? '').trim();
    expect(secondKey).toMatch(/^kw_mk_/);
    await page.getByRole('button', { name: 'I have copied them' }).click();
    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'Research' }).waitFor();
    await page.getByRole('cell', { name: 'ben@company.com', exact: true }).waitFor();
    expect(await page.content()).not.toContain(memberKey);
    expect(await page.content()).not.toContain(secondKey);

    await visit(page, 'Approvals');
    await page
      .getByRole('button', { name: /^Approve / })
      .first()
      .click();
    await page.getByText('Nothing waits for approval.').waitFor();
    const approvals = (await (await call(fixture.gateway, 'GET', '/v1/approvals?status=approved', undefined, { key: fixture.adminKey })).json()) as {
      data: unknown[];
    };
    expect(approvals.data).toHaveLength(1);

    await visit(page, 'Alerts');
    const alertForm = page.getByRole('form', { name: 'Create a cost alert' });
    await alertForm.getByLabel('Threshold (USD)').fill('250');
    await alertForm.getByLabel('Notify').fill('finance@company.com');
    await alertForm.getByRole('button', { name: 'Create alert' }).click();
    await page.getByRole('cell', { name: 'byok_cost_threshold' }).waitFor();

    await visit(page, 'Usage');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = readFileSync((await download.path()) ?? '', 'utf8');
    const lines = csv.trim().split('\n');
    expect(lines[0]).toContain('provider');
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(csv).not.toContain(fixture.memberKey);
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);

  test("a team's admin member manages its team's members and approvals, and is offered nothing of the account", async () => {
    const watched = await open();
    const { page } = watched;
    await signIn(watched, fixture.leadKey);
    for (const name of PAGES) {
      await visit(page, name);
      for (const action of ['Add key', 'Create team', 'Edit policy', 'Rotate', 'Save routing', 'Export CSV', 'Create alert']) {
        expect({ page: name, action, count: await page.getByRole('button', { name: action, exact: true }).count() }).toEqual({ page: name, action, count: 0 });
      }
    }
    await visit(page, 'Teams');
    expect(await page.getByRole('button', { name: 'Add member', exact: true }).count()).toBe(1);
    // Its team's approvals are its to decide (the fixture's one may be decided already by an earlier test).
    await visit(page, 'Approvals');
    expect(await page.getByText('is for account admins').count()).toBe(0);
    await visit(page, 'Usage');
    await page.getByText('is for account admins').waitFor();
    // Every call the pages made was one the API answers for this key: none was refused.
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);

  for (const role of ['viewer', 'member'] as const) {
    test(`a ${role} sees every page but no admin action, and the API is never asked for what it may not see`, async () => {
      const watched = await open();
      const { page } = watched;
      await signIn(watched, role === 'viewer' ? fixture.viewerKey : fixture.memberKey);
      for (const name of PAGES) {
        await visit(page, name);
        await shoot(page, `${role}-${name.toLowerCase().replace(' ', '-')}`);
        for (const action of ['Add key', 'Create team', 'Delete', 'Rotate', 'Save policy', 'Save routing', 'Export CSV', 'Create alert', 'Add member']) {
          expect(await page.getByRole('button', { name: action, exact: true }).count()).toBe(0);
        }
        expect(await page.getByRole('button', { name: /^(Approve|Deny) / }).count()).toBe(0);
      }
      await visit(page, 'Teams');
      await page.getByText('is for account admins').waitFor();
      expect(await readable(page)).not.toContain(role === 'viewer' ? fixture.viewerKey : fixture.memberKey);
      expect(watched.problems).toEqual([]);
      await watched.context.close();
    }, 60_000);
  }
});
