/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core), against Vigil
 * started the way `npm start` starts it: the compiled code, the simulator, the demo.
 *
 * A nurse logs in with the keyboard, sees every resident's card update live, a fall is
 * triggered, it arrives as a critical alert (banner, title, inbox) without a reload, she
 * acknowledges it with a note and sees the escalation stop — checked in the API too. A staff
 * key sees no Resolve button; a push reaches the service worker and becomes a notification.
 * Screenshots go to test-output/dashboard/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumInstalled } from '../src/testing/services.js';
import { ADMIN_KEY, api, freePort, tempDir, waitFor } from './helpers.js';

const BIN = new URL('../bin/vigil.js', import.meta.url).pathname;
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const SHOTS = new URL('../test-output/dashboard/', import.meta.url).pathname;
const RESIDENTS = 5;
/** The demo plays SOS, tachycardia and hypoxia on devices 0–2: the fall goes to the last one. */
const FALL_DEVICE = RESIDENTS - 1;

// The page's globals, for the functions page.evaluate runs in the browser (this project has no DOM lib).
declare const window: { notReloaded?: boolean };
declare const axe: { run(context: unknown, options: unknown): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> };
declare const document: unknown;
declare const sessionStorage: { getItem(key: string): string | null };
declare const localStorage: { getItem(key: string): string | null };
declare const navigator: {
  serviceWorker: {
    register(url: string, options: { scope: string }): Promise<unknown>;
    ready: Promise<{ getNotifications(): Promise<{ title: string; body: string; tag: string }[]> }>;
  };
};

interface Notification {
  status: string;
  step: number;
}

describe.skipIf(!chromiumInstalled())('dashboard in Chromium', () => {
  let child: ChildProcess;
  let browser: Browser;
  let base = '';
  const admin = (method: string, path: string, body?: unknown) => api(base, method, path, { token: ADMIN_KEY, body });

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawn(
      process.execPath,
      [BIN, 'start', '--simulate', String(RESIDENTS), '--port', String(port), '--data-dir', tempDir('vigil-dashboard-'), '--admin-key', ADMIN_KEY,
        '--status-interval-ms', '0', '--log-level', 'warn'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    await waitFor('vigil up', async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok, 30_000, 100);
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    child?.kill('SIGTERM');
  });

  async function logIn(page: Page, key: string, name: string): Promise<void> {
    await page.goto(base + '/');
    // Keyboard only: the field has focus order and Enter submits.
    await page.getByLabel('Your key').focus();
    await page.keyboard.type(key);
    await page.keyboard.press('Tab');
    await page.keyboard.type(name);
    await page.keyboard.press('Enter');
  }

  /** WCAG 2 A and AA rules (axe-core, injected: the context bypasses the page's CSP for it) find nothing. */
  async function expectAccessible(page: Page, what: string): Promise<void> {
    await page.addScriptTag({ path: AXE });
    const { violations } = await page.evaluate(() => axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }));
    expect(violations.map((v) => `${what}: ${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
  }

  const card = (page: Page, residentId: string) => page.locator(`li.card[data-resident="${residentId}"]`);

  it('shows live residents, brings a fall to the inbox, and stops the escalation on acknowledgement', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await logIn(page, ADMIN_KEY, 'Nurse Marie');

    // Overview: every resident as a card, with vitals once the warehouse has their first readings.
    await expect.poll(() => page.locator('li.card').count(), { timeout: 20_000 }).toBe(RESIDENTS);
    await expect.poll(() => page.locator('li.card dd.hr').allTextContents().then((t) => t.filter((x) => /^\d+/.test(x)).length), { timeout: 30_000 }).toBe(RESIDENTS);
    await expect.poll(() => page.locator('.live').textContent(), { timeout: 10_000 }).toBe('Live');

    const fleet = (await admin('GET', '/v1/residents?limit=100')).body.residents as { id: string; name: string }[];
    const devices = await Promise.all(fleet.map(async (r) => ({ r, devices: (await admin('GET', `/v1/residents/${r.id}`)).body.devices as { deviceId: string }[] })));
    const fallen = devices.find((d) => d.devices.some((x) => x.deviceId.endsWith(String(FALL_DEVICE + 1).padStart(4, '0'))))?.r ?? devices[devices.length - 1].r;

    // Live: the card's newest reading moves on without a reload (the marker survives only if the page is not reloaded).
    await page.evaluate(() => (window.notReloaded = true));
    const before = await card(page, fallen.id).getAttribute('data-last-ts');
    await expect.poll(() => card(page, fallen.id).getAttribute('data-last-ts'), { timeout: 20_000 }).not.toBe(before);
    await page.screenshot({ path: `${SHOTS}01-overview.png`, fullPage: true });
    await expectAccessible(page, 'overview');

    // A fall: the simulator's band raises it, the card and a critical banner show it, live.
    expect((await admin('POST', '/v1/simulator/scenarios', { device: FALL_DEVICE, scenario: 'FALL' })).status).toBe(202);
    await expect.poll(() => card(page, fallen.id).locator('.card-alerts').textContent().catch(() => ''), { timeout: 30_000 }).toContain('Possible fall');
    await expect.poll(() => page.locator('.banner.critical').count(), { timeout: 5_000 }).toBe(1);
    expect(await page.title()).toMatch(/⚠/);
    // Residents with an open critical alert come first.
    expect(await page.locator('li.card').first().locator('.card-alerts .sev-critical').count()).toBeGreaterThan(0);
    await page.screenshot({ path: `${SHOTS}02-fall-on-overview.png`, fullPage: true });

    // The inbox, reached by keyboard-reachable navigation.
    await page.getByRole('link', { name: /^Alerts/ }).click();
    const fall = page.locator('article.alert', { has: page.locator('h2', { hasText: 'Possible fall' }) });
    await expect.poll(() => fall.count(), { timeout: 10_000 }).toBe(1);
    const alertId = (await fall.getAttribute('data-alert'))!;
    expect(await fall.textContent()).toContain(fallen.name);
    // Looking at the inbox clears the title notice.
    await expect.poll(() => page.title(), { timeout: 5_000 }).toBe('Vigil');
    // The escalation is shown while it runs (demo policy: steps at 0, 10 and 20 s).
    await expect.poll(() => fall.locator('.escalation li').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await page.screenshot({ path: `${SHOTS}03-inbox-fall.png`, fullPage: true });

    await fall.getByPlaceholder(/Note/).fill('Helped her up, no injury');
    await fall.getByRole('button', { name: 'Acknowledge' }).click();
    await expect.poll(() => fall.getAttribute('data-state'), { timeout: 10_000 }).toBe('acknowledged');
    await expect.poll(() => fall.locator('summary').getAttribute('data-escalation'), { timeout: 15_000 }).toBe('stopped');
    await page.screenshot({ path: `${SHOTS}04-acknowledged.png`, fullPage: true });
    await expectAccessible(page, 'inbox');

    // The API agrees: acknowledged by her with her note, and nothing left to send.
    const stored = (await admin('GET', `/v1/alerts/${alertId}`)).body;
    expect(stored).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'Nurse Marie', ackNote: 'Helped her up, no injury' });
    const notifications = async () => ((await admin('GET', `/v1/alerts/${alertId}/notifications`)).body.notifications as Notification[]);
    const afterAck = await notifications();
    expect(afterAck.filter((n) => n.status === 'queued' || n.status === 'sending')).toEqual([]);
    // The demo escalates every 10 s: after 12 s more, still nothing new was sent.
    await new Promise((r) => setTimeout(r, 12_000));
    const later = await notifications();
    expect(later.filter((n) => n.status !== 'cancelled').length).toBe(afterAck.filter((n) => n.status !== 'cancelled').length);

    // Resident page: charts drawn, the alert in the history, contacts and escalation (admin).
    await page.getByRole('link', { name: fallen.name }).first().click();
    await expect.poll(() => page.locator('figure.chart canvas').count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(4);
    await expect.poll(() => page.locator('table').first().textContent(), { timeout: 10_000 }).toBeTruthy();
    await expect.poll(() => page.getByRole('heading', { name: 'Alert history' }).count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => page.getByRole('heading', { name: 'Contacts' }).count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => page.getByRole('heading', { name: 'Escalation' }).count(), { timeout: 10_000 }).toBe(1);
    await page.getByRole('button', { name: '7 days' }).click();
    await expect.poll(() => page.getByRole('button', { name: '7 days' }).getAttribute('aria-pressed')).toBe('true');
    await page.screenshot({ path: `${SHOTS}05-resident.png`, fullPage: true });
    await expectAccessible(page, 'resident page');

    expect(await page.evaluate(() => window.notReloaded)).toBe(true);
    expect(pageErrors).toEqual([]);
    await context.close();
  });

  it('gives a staff key what its scopes allow, on a phone-sized screen', async () => {
    const created = await admin('POST', '/v1/api-keys', { name: 'Night shift', scopes: ['residents:read', 'vitals:read', 'alerts:read', 'alerts:ack'] });
    expect(created.status).toBe(201);
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, bypassCSP: true });
    const page = await context.newPage();
    await logIn(page, created.body.key, 'Night nurse');
    await expect.poll(() => page.locator('li.card').count(), { timeout: 20_000 }).toBe(RESIDENTS);
    // No activity or sleep scope: those stay blank rather than failing.
    expect(await page.locator('.error').count()).toBe(0);
    await page.getByRole('link', { name: /^Alerts/ }).click();
    await expect.poll(() => page.locator('article.alert').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    // Acknowledge yes, resolve (admin) no.
    expect(await page.getByRole('button', { name: 'Resolve' }).count()).toBe(0);
    await page.screenshot({ path: `${SHOTS}06-staff-phone.png`, fullPage: true });
    await expectAccessible(page, 'inbox on a phone');

    // A wrong key is refused with the API's words, and nothing is stored.
    await page.getByRole('button', { name: 'Log out' }).click();
    await logIn(page, 'vkey_not-a-key', 'Someone');
    await expect.poll(() => page.locator('.login .error').textContent(), { timeout: 5_000 }).toMatch(/key/i);
    expect(await page.evaluate(() => sessionStorage.getItem('vigil.key') ?? localStorage.getItem('vigil.key'))).toBeNull();
    await context.close();
  });

  it('shows a push as a notification through the service worker', async () => {
    const context = await browser.newContext();
    await context.grantPermissions(['notifications'], { origin: base });
    const page = await context.newPage();
    await page.goto(base + '/');
    // What the resident page's "Send … alerts to this browser" registers first.
    await page.evaluate(async () => {
      await navigator.serviceWorker.register('/sw.js', { scope: '/' });
      await navigator.serviceWorker.ready;
    });
    // Chromium's DevTools protocol delivers a push message as the push service would.
    const cdp = await context.newCDPSession(page);
    const registrations = new Promise<{ registrationId: string }[]>((resolve) => cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => resolve(e.registrations)));
    await cdp.send('ServiceWorker.enable');
    const [registration] = await registrations;
    const payload = { title: 'Vigil: fall', body: 'Odette may have fallen at 10:02.', alertId: 'alr_test', severity: 'critical', url: '/#/alerts/alr_test' };
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: base, registrationId: registration.registrationId, data: JSON.stringify(payload) });
    const shown = await waitFor('notification shown', async () => {
      const list = await page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag })));
      return list.length ? list : null;
    }, 10_000);
    expect(shown).toEqual([{ title: payload.title, body: payload.body, tag: 'alr_test' }]);
    await context.close();
  });
});
