// The dashboard's management actions in Chromium, checked against the API: money fields that take
// amounts under a cent, a member's key re-issued and a member removed (by an account admin and by the
// team's admin member, whose refusals are the API's), a rotation that names which of several keys
// it replaces, and alert rules that show what they watch and ask before they are deleted.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser, Dialog } from 'playwright-core';
import { addProviderKeys, call } from '../helpers/gateway.ts';
import { open, signIn, visit, startBrowserSuite, stopBrowserSuite, type Watched } from './browser-kit.ts';
import { CHROMIUM, chromiumMissing, OPENAI_KEY, SECOND_OPENAI_KEY, type DashboardFixture } from './fixture.ts';

const THIRD_OPENAI_KEY = 'sk-proj-DashboardTestsOpenAIKey0000000003';

interface Member {
  id: string;
  email: string;
  role: string;
  api_key?: string;
}
interface Team {
  id: string;
  name: string;
  byok_permissions: { providers: Record<string, { max_cost_per_day?: number; require_approval_above?: number }> };
  members: Member[];
}

let fixture: DashboardFixture;
let browser: Browser;

if (chromiumMissing) console.warn(`test/dashboard/browser-actions.test.ts skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does it).`);

async function admin<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await call(fixture.gateway, method, path, body, { key: fixture.adminKey });
  return { status: response.status, body: (response.status === 204 ? undefined : await response.json()) as T };
}

const engineering = async (): Promise<Team> => (await admin<Team>('GET', `/v1/teams/${fixture.teamId}`)).body;

/** Accepts every confirmation the page asks for, keeping what it asked. */
function confirmAll(watched: Watched): string[] {
  const asked: string[] = [];
  watched.page.on('dialog', (dialog: Dialog) => {
    asked.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.accept();
  });
  return asked;
}

/** The key shown once in the page's "copy them now" box, then the box dismissed. */
async function issuedKey(watched: Watched): Promise<string> {
  const shown = watched.page.locator('.issued code.secret');
  await shown.waitFor();
  const key = ((await shown.textContent()) ?? '').trim();
  await watched.page.getByRole('button', { name: 'I have copied them' }).click();
  return key;
}

const status = async (key: string): Promise<number> => (await call(fixture.gateway, 'GET', '/v1/usage/me', undefined, { key })).status;

describe.skipIf(chromiumMissing)('dashboard actions in Chromium', () => {
  beforeAll(async () => {
    ({ fixture, browser } = await startBrowserSuite());
  }, 60_000);

  afterAll(() => stopBrowserSuite({ browser, fixture }));

  test('money fields take amounts under a cent: a policy approving above $0.005 is saved, a team and an alert are created with one', async () => {
    const watched = await open(browser);
    const { page } = watched;
    await signIn(watched, fixture.gateway.url, fixture.adminKey);
    await visit(page, 'Teams');
    await page.getByRole('region', { name: 'Engineering' }).getByRole('button', { name: 'Edit policy' }).click();
    const policy = page.getByRole('form', { name: 'Policy of Engineering' });
    expect(await policy.getByLabel('Require approval above (USD)').inputValue()).toBe('0.005');
    await policy.getByLabel('Max cost per day (USD)').fill('50');
    await policy.getByRole('button', { name: 'Save policy' }).click();
    await policy.waitFor({ state: 'detached' });
    expect((await engineering()).byok_permissions.providers.openai).toMatchObject({ max_cost_per_day: 50, require_approval_above: 0.005 });

    const create = page.getByRole('form', { name: 'Create a team' });
    await create.getByLabel('Team name').fill('Interns');
    await create.getByLabel('Max cost per day (USD)').fill('0.25');
    await create.getByLabel('Require approval above (USD)').fill('0.0015');
    await create.getByRole('button', { name: 'Create team' }).click();
    await page.getByRole('heading', { level: 2, name: 'Interns' }).waitFor();
    const teams = (await admin<{ teams: Team[] }>('GET', '/v1/teams')).body.teams;
    expect(teams.find((team) => team.name === 'Interns')?.byok_permissions.providers.openai).toMatchObject({
      max_cost_per_day: 0.25,
      require_approval_above: 0.0015,
    });

    await visit(page, 'Alerts');
    const alert = page.getByRole('form', { name: 'Create a cost alert' });
    await alert.getByLabel('Threshold (USD)').fill('0.005');
    await alert.getByLabel('Notify').fill('finance@company.com');
    await alert.getByRole('button', { name: 'Create alert' }).click();
    await page.getByRole('cell', { name: '$0.005' }).waitFor();
    const alerts = (await admin<{ alerts: Array<{ threshold: number }> }>('GET', '/v1/alerts')).body.alerts;
    expect(alerts.map((rule) => rule.threshold)).toContain(0.005);
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);

  test("an account admin re-issues a member's key (shown once, the old one dead) and removes a member, each after a confirmation", async () => {
    const added = (await admin<Member>('POST', `/v1/teams/${fixture.teamId}/members`, { email: 'leaver@company.com', role: 'developer' })).body;
    const watched = await open(browser);
    const asked = confirmAll(watched);
    const { page } = watched;
    await signIn(watched, fixture.gateway.url, fixture.adminKey);
    await visit(page, 'Teams');
    await page.getByRole('button', { name: 'Re-issue the key of developer@company.com' }).click();
    const reissued = await issuedKey(watched);
    expect(reissued).toMatch(/^kw_mk_/);
    expect(asked).toEqual([expect.stringMatching(/^confirm: .*developer@company\.com/)]);
    expect(await status(reissued)).toBe(200);
    expect(await status(fixture.memberKey)).toBe(401);
    fixture.memberKey = reissued;
    expect(await page.content()).not.toContain(reissued);

    await page.getByRole('button', { name: 'Remove leaver@company.com from Engineering' }).click();
    await page.getByRole('cell', { name: 'leaver@company.com', exact: true }).waitFor({ state: 'detached' });
    expect(asked[1]).toMatch(/^confirm: .*leaver@company\.com/);
    expect((await engineering()).members.map((member) => member.email)).not.toContain('leaver@company.com');
    expect(await status(added.api_key ?? '')).toBe(401);
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);

  test("a team's admin member re-issues and removes its developers; what the API refuses it is shown as the API says it", async () => {
    const added = (await admin<Member>('POST', `/v1/teams/${fixture.teamId}/members`, { email: 'temp@company.com', role: 'developer' })).body;
    const watched = await open(browser);
    confirmAll(watched);
    const { page } = watched;
    await signIn(watched, fixture.gateway.url, fixture.leadKey);
    await visit(page, 'Teams');
    await page.getByRole('button', { name: 'Re-issue the key of temp@company.com' }).click();
    const reissued = await issuedKey(watched);
    expect(await status(reissued)).toBe(200);
    expect(await status(added.api_key ?? '')).toBe(401);

    // An admin member's key, its own included, is the account admin's to re-issue (403), and a key cannot remove its own member (409).
    await page.getByRole('button', { name: 'Re-issue the key of lead@company.com' }).click();
    await page.getByRole('alert').filter({ hasText: "lead@company.com's key is an admin key" }).waitFor();
    await page.getByRole('button', { name: 'Remove lead@company.com from Engineering' }).click();
    await page.getByRole('alert').filter({ hasText: 'A key cannot remove its own member.' }).waitFor();
    expect(await status(fixture.leadKey)).toBe(200);

    await page.getByRole('button', { name: 'Remove temp@company.com from Engineering' }).click();
    await page.getByRole('cell', { name: 'temp@company.com', exact: true }).waitFor({ state: 'detached' });
    expect(await status(reissued)).toBe(401);
    // The two refusals (and the browser's console line for each) are all that went wrong.
    const refusals = /^(HTTP (403: POST|409: DELETE) .*\/members\/|console error: Failed to load resource: the server responded with a status of (403|409))/;
    expect(watched.problems.filter((problem) => !refusals.test(problem))).toEqual([]);
    expect(watched.problems).toHaveLength(4);
    await watched.context.close();
  }, 60_000);

  test('rotating a provider with several keys names the one to replace', async () => {
    await addProviderKeys(fixture.gateway, [{ name: 'openai', api_key: SECOND_OPENAI_KEY }], fixture.adminKey);
    fixture.openai.state.apiKeys.add(THIRD_OPENAI_KEY);
    const keys = (await admin<{ providers: Array<{ key_id: string; masked_key: string }> }>('GET', '/v1/providers')).body.providers;
    expect(keys).toHaveLength(2);
    const second = keys.find((key) => key.masked_key.endsWith('0002'));
    if (second === undefined) throw new Error(`the second key is not listed: ${JSON.stringify(keys)}`);
    const watched = await open(browser);
    const { page } = watched;
    await signIn(watched, fixture.gateway.url, fixture.adminKey);
    await visit(page, 'Providers');
    const form = page.getByRole('form', { name: 'Rotate a provider key' });
    await form.getByLabel('Key to rotate').selectOption(second.key_id);
    await form.getByLabel('New API key').fill(THIRD_OPENAI_KEY);
    await form.getByRole('button', { name: 'Rotate' }).click();
    await page.getByRole('cell', { name: /^sk-proj-.*0003$/ }).waitFor();
    const rotations = (await admin<{ rotations: Array<{ old_key_id: string }> }>('GET', '/v1/providers/keys/rotations')).body.rotations;
    expect(rotations.map((rotation) => rotation.old_key_id)).toEqual([second.key_id]);
    expect(await page.content()).not.toContain(THIRD_OPENAI_KEY);
    expect(await page.content()).not.toContain(OPENAI_KEY);
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);

  test('alert rules show their name, provider and team, and deleting one asks first', async () => {
    const created = (
      await admin<{ alerts: Array<{ id: string }> }>('POST', '/v1/alerts', {
        alerts: [
          {
            type: 'byok_cost_threshold',
            name: 'Engineering daily spend',
            provider: 'openai',
            team: 'Engineering',
            threshold: 20,
            notify: ['lead@company.com'],
          },
        ],
      })
    ).body.alerts[0];
    const watched = await open(browser);
    const { page } = watched;
    const asked: string[] = [];
    let answer = false;
    page.on('dialog', (dialog: Dialog) => {
      asked.push(dialog.message());
      void (answer ? dialog.accept() : dialog.dismiss());
    });
    await signIn(watched, fixture.gateway.url, fixture.adminKey);
    await visit(page, 'Alerts');
    const row = page.getByRole('row').filter({ hasText: 'Engineering daily spend' });
    for (const cell of ['Engineering daily spend', 'openai', 'Engineering', '$20.00']) await row.getByRole('cell', { name: cell, exact: true }).waitFor();

    const remove = page.getByRole('button', { name: `Delete alert ${created?.id}` });
    await remove.click();
    expect(asked).toEqual([expect.stringContaining('Engineering daily spend')]);
    const kept = (await admin<{ alerts: Array<{ id: string }> }>('GET', '/v1/alerts')).body.alerts;
    expect(kept.map((rule) => rule.id)).toContain(created?.id ?? 'none');
    answer = true;
    await remove.click();
    await row.waitFor({ state: 'detached' });
    const left = (await admin<{ alerts: Array<{ id: string }> }>('GET', '/v1/alerts')).body.alerts;
    expect(left.map((rule) => rule.id)).not.toContain(created?.id ?? 'none');
    expect(watched.problems).toEqual([]);
    await watched.context.close();
  }, 60_000);
});
