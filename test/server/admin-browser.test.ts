// The dashboard in a real browser: Debian's chromium, headless, driven through
// playwright-core. A Python app and a JavaScript app serve light load; the interpreter
// table must fill in and keep updating, and "recycle" must restart an interpreter.
import { existsSync, mkdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../server/config.ts';
import { createLogger } from '../../server/logger.ts';
import { openServer, type RunningServer } from '../../server/serve.ts';
import { startTestServer, type TestServer } from './support.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT_DIR = 'test-results';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`admin-browser.test.ts skipped: ${CHROMIUM} is missing; install Debian's "chromium" package (apt-get install -y chromium)`);

describe.skipIf(!haveChromium)('admin dashboard in headless Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let load: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    server = await startTestServer(['/py=apps/hello.py', '/=apps/hello.ts', '/stream=apps/stream.ts', '--workers', '1']);
    // Light load: a few requests a second to each app, and one slow stream now and then.
    let tick = 0;
    load = setInterval(() => {
      tick++;
      for (const path of ['/py/', '/', '/hello']) void fetch(`${server.url}${path}`).then((r) => r.text(), () => {});
      if (tick % 10 === 0) void fetch(`${server.url}/stream/report?chunks=4&delay=400`).then((r) => r.text(), () => {});
    }, 100);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking'],
    });
  });

  afterAll(async () => {
    clearInterval(load);
    await browser?.close();
    await server?.close();
  });

  it('fills the interpreter table, updates it live, and recycles an interpreter', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()); });
    await page.goto(`${server.url}/admin`);

    // One card per app, each with its interpreter rows.
    const pyRows = page.locator('section.app[data-app="/py"] table.interpreters tbody tr');
    const jsRows = page.locator('section.app[data-app="/"] table.interpreters tbody tr');
    await expect.poll(() => pyRows.count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => jsRows.count()).toBe(1);
    await expect.poll(() => page.locator('section.app').count()).toBe(3);
    expect(await pyRows.first().locator('td.state').textContent()).toMatch(/idle|busy/);
    expect(await page.locator('section.app[data-app="/py"] .subtitle').textContent()).toContain('Python 3.');
    expect(await page.locator('section.app[data-app="/"] .subtitle').textContent()).toContain('Node 24');

    // It updates without a reload: the served count grows under the load.
    const served = async () => Number(await pyRows.first().locator('td.served').textContent());
    const before = await served();
    await expect.poll(served, { timeout: 10_000 }).toBeGreaterThan(before);
    await expect.poll(async () => Number(await page.locator('section.app[data-app="/py"] [data-figure="rate"]').textContent()), { timeout: 15_000 }).toBeGreaterThan(0);
    // The charts are drawn by uPlot, served by the server itself.
    await expect.poll(() => page.locator('section.app[data-app="/py"] .uplot canvas').count()).toBe(2);

    // Recycle the JavaScript interpreter: its slot restarts once, for reason "recycled".
    const jsRow = jsRows.first();
    const oldWorker = await jsRow.getAttribute('data-worker-id');
    expect(await jsRow.locator('td.restarts').textContent()).toBe('0');
    await jsRow.locator('button.recycle').click();
    await expect.poll(() => jsRow.locator('td.restarts').textContent(), { timeout: 10_000 }).toBe('1');
    expect(await jsRow.locator('td.lastExit').textContent()).toBe('recycled');
    expect(await jsRow.getAttribute('data-worker-id')).not.toBe(oldWorker);

    // And the Python one, which comes back from its memory snapshot.
    const pyRow = pyRows.first();
    await pyRow.locator('button.recycle').click();
    await expect.poll(() => pyRow.locator('td.restarts').textContent(), { timeout: 20_000 }).toBe('1');
    await expect.poll(() => pyRow.locator('td.boot').textContent(), { timeout: 20_000 }).toMatch(/^snapshot [\d.]+ ms/);

    // Let a slow stream show up as "serving", then keep the picture.
    await expect.poll(() => page.locator('section.app[data-app="/stream"] td.serving').first().textContent(), { timeout: 10_000 }).toContain('GET /stream/report');
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: `${SCREENSHOT_DIR}/admin-dashboard.png`, fullPage: true });
    expect(problems).toEqual([]);
  }, 90_000);
});

/** An address of this machine that is not loopback, to be a remote client from a local browser. */
const outsideAddress = Object.values(networkInterfaces()).flat()
  .find((entry) => entry && entry.family === 'IPv4' && !entry.internal)?.address;
const TOKEN = 'browser-test-admin-token-0123456789';

describe.skipIf(!haveChromium || !outsideAddress)('admin sign-in from a non-loopback address, in headless Chromium', () => {
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    const config = resolveConfig({ argv: ['apps/hello.ts', '--workers', '1', '--bind', `${outsideAddress}:0`, '--admin-token', TOKEN], env: {}, cwd: process.cwd() });
    server = await openServer(config, createLogger('silent'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('sends the dashboard to the sign-in form until the token is given once; the cookie then opens the dashboard and its actions', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    expect((await page.goto(`${server.url}/admin`))!.status()).toBe(200);
    expect(page.url()).toBe(`${server.url}/admin/login`);
    expect((await page.goto(`${server.url}/admin/api/stats`))!.status()).toBe(404);
    expect((await page.goto(`${server.url}/metrics`))!.status()).toBe(404);

    await page.goto(`${server.url}/admin/login`);
    await page.fill('input[name="token"]', 'not-the-token-at-all');
    await Promise.all([page.waitForURL(/\/admin\/login\?failed=1$/), page.click('button[type="submit"]')]);
    expect(await page.locator('.failed').textContent()).toContain('wrong token');
    await page.fill('input[name="token"]', TOKEN);
    await Promise.all([page.waitForURL(/\/admin\/$/), page.click('button[type="submit"]')]);

    const row = page.locator('section.app[data-app="/"] table.interpreters tbody tr').first();
    await expect.poll(() => row.locator('td.state').textContent(), { timeout: 10_000 }).toBe('idle');
    await row.locator('button.recycle').click();
    await expect.poll(() => row.locator('td.restarts').textContent(), { timeout: 10_000 }).toBe('1');
    const cookies = await page.context().cookies();
    expect(cookies).toEqual([expect.objectContaining({ name: 'interpool_admin', httpOnly: true, sameSite: 'Strict', path: '/admin' })]);
    expect(cookies[0]!.value).not.toContain(TOKEN);
    expect(problems).toEqual([]);
  }, 60_000);
});
