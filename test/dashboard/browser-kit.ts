// What the dashboard's browser tests share: a watched page (console errors, page errors, failed
// requests and 4xx/5xx answers recorded), signing in, and moving between pages the way a user does.

import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CHROMIUM, startDashboardFixture, type DashboardFixture } from './fixture.ts';

/** The page's document, as the functions passed to page.evaluate see it (this project compiles without DOM types). */
declare const document: { querySelectorAll(selector: string): { length: number } };

export const PAGES = ['Overview', 'Providers', 'Teams', 'Approvals', 'Usage', 'Alerts', 'Rotation', 'Settings', 'Audit log'];

export interface Watched {
  context: BrowserContext;
  page: Page;
  problems: string[];
}

/** A fresh browser profile whose console errors, page errors and failed requests are all recorded. */
export async function open(browser: Browser, viewport = { width: 1280, height: 860 }): Promise<Watched> {
  const context = await browser.newContext({ acceptDownloads: true, viewport, timezoneId: 'America/New_York' });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
  });
  return { context, page, problems };
}

/** Until no part of the page is still loading (navigating away earlier would abort its fetches). */
export async function settled(page: Page): Promise<void> {
  await page.waitForFunction(() => document.querySelectorAll('[role=status].loading').length === 0);
}

export async function signIn(watched: Watched, gatewayUrl: string, key: string): Promise<void> {
  await watched.page.goto(`${gatewayUrl}/dashboard`);
  await watched.page.getByLabel('Gateway key').fill(key);
  await watched.page.getByRole('button', { name: 'Sign in' }).click();
  await watched.page.getByRole('button', { name: 'Sign out' }).waitFor();
  await settled(watched.page);
}

export async function visit(page: Page, name: string): Promise<void> {
  await page.getByRole('navigation').getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { level: 1, name, exact: true }).waitFor();
  await settled(page);
}

/** What a browser suite runs against: the dashboard's gateway fixture and a headless Chromium. */
export interface BrowserSuite {
  fixture: DashboardFixture;
  browser: Browser;
}

/** The fixture (options as startDashboardFixture's) and Debian's Chromium, launched headless. */
export async function startBrowserSuite(options: Parameters<typeof startDashboardFixture>[0] = {}): Promise<BrowserSuite> {
  const fixture = await startDashboardFixture(options);
  const { chromium } = await import('playwright-core');
  return { fixture, browser: await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] }) };
}

/** Closes the browser, then stops the fixture; either may be missing when the start failed. */
export async function stopBrowserSuite(suite: Partial<BrowserSuite>): Promise<void> {
  await suite.browser?.close();
  await suite.fixture?.stop();
}
