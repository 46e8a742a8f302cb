// The dashboard in a real browser: Debian's chromium, headless, driven through
// playwright-core, at 1366×768. Four apps — one failing to import, a Python app and two
// JavaScript apps under light load: the summary row fills in, the failing app is listed
// first with its exception and its own frames, nothing is wider than the window, the
// rows expand from the keyboard, the interpreter tables update live and "recycle"
// restarts an interpreter.
import { existsSync, mkdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../server/config.ts';
import { createLogger } from '../../server/logger.ts';
import { openServer, type RunningServer } from '../../server/serve.ts';
import { startTestServer, type TestServer } from './support.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT_DIR = 'test-results';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`admin-browser.test.ts skipped: ${CHROMIUM} is missing; install Debian's "chromium" package (apt-get install -y chromium)`);

/** Evaluated in the page: how much wider the document is than the window (0: no horizontal scroll bar). */
const OVERFLOW = 'document.documentElement.scrollWidth - window.innerWidth';

describe.skipIf(!haveChromium)('admin dashboard in headless Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let load: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    server = await startTestServer([
      '/broken=test/fixtures/apps/fails-to-import.py', '/py=apps/hello.py', '/=apps/hello.ts', '/stream=apps/stream.ts', '--workers', '1',
    ]);
    // Light load: a few requests a second to each app, and one slow stream now and then.
    let tick = 0;
    load = setInterval(() => {
      tick++;
      for (const path of ['/py/', '/', '/hello', '/broken/']) void fetch(`${server.url}${path}`).then((r) => r.text(), () => {});
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

  const app = (page: Page, name: string) => page.locator(`tbody.app[data-app="${name}"]`);

  it('fits 1366×768: the summary first, the failing app at the top with its error, rows that expand from the keyboard', async () => {
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()); });
    await page.goto(`${server.url}/_interpool`);

    // The failing app is listed first, highlighted, with its exception and its own frames.
    await expect.poll(() => page.locator('tbody.app').count(), { timeout: 10_000 }).toBe(4);
    expect(await page.locator('tbody.app').first().getAttribute('data-app')).toBe('/broken');
    expect(await app(page, '/broken').getAttribute('class')).toContain('failing');
    expect(await app(page, '/broken').locator('td.status').textContent()).toMatch(/^failing to boot · \d+ attempts? · retry in \d+ s$/);
    const error = app(page, '/broken').locator('.boot-error');
    expect(await error.isVisible()).toBe(true);
    expect(await error.locator('.exception').textContent()).toBe("KeyError: 'missing-setting'");
    expect(await error.locator('ol.frames li').allTextContents()).toEqual([
      'fails-to-import.py:8 in <module>configure()',
      'fails-to-import.py:5 in configurereturn {}["missing-setting"]',
    ]);
    // The healthy apps follow in mount order, with their engines.
    expect(await page.locator('tbody.app').evaluateAll((bodies) => bodies.map((body) => body.getAttribute('data-app')))).toEqual(['/broken', '/py', '/', '/stream']);
    expect(await app(page, '/py').locator('td.engine').textContent()).toMatch(/^Python 3\.14\.\d+ \(Pyodide /);
    expect(await app(page, '/').locator('td.engine').textContent()).toMatch(/^Node 24\./);
    expect(await app(page, '/broken').locator('td.engine').textContent()).toBe('Python 3.14 (Pyodide)');

    // The summary row, every tile filled.
    const tile = (name: string) => page.locator(`[data-summary="${name}"]`).textContent();
    expect(await tile('memory')).toMatch(/^\d+(\.\d)? MiB · \d+(\.\d)? MiB$/);
    expect(await tile('cpu')).toMatch(/^\d+(\.\d)? %$/);
    expect(await tile('uptime')).toMatch(/^\d+ (s|min)/);
    expect(await tile('queue')).toMatch(/^\d+ · \d+$/);
    expect(await tile('interpreters')).toMatch(/^\d+ idle · \d+ busy/);
    // The failing app's interpreter, failed or retrying (polled: between a failed boot's
    // worker ending and its replacement starting, neither is there for a moment).
    await expect.poll(() => tile('interpreters'), { timeout: 15_000 }).toMatch(/ · 1 (failed|booting)$/);
    expect(await tile('engines')).toMatch(/Python 3\.14 \(Pyodide\): \/broken · Python 3\.14\.\d+ \(Pyodide [^)]+\): \/py · Node 24\.[\d.]+: \/, \/stream/);
    await expect.poll(async () => Number(await tile('rate')), { timeout: 15_000 }).toBeGreaterThan(0);
    await expect.poll(() => tile('errors'), { timeout: 15_000 }).toMatch(/^\d+(\.\d)? %$/);
    expect(await tile('errors')).not.toBe('0 %'); // the failing app's 503s

    // Nothing wider than the window, collapsed or expanded.
    expect(await page.evaluate(OVERFLOW)).toBeLessThanOrEqual(0);

    // Keyboard: Tab reaches the first expand button, Enter expands it.
    let focused = '';
    for (let presses = 0; presses < 20 && focused !== 'expand'; presses++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate('document.activeElement.className');
    }
    expect(focused).toBe('expand');
    const toggle = app(page, '/broken').locator('button.expand');
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    await page.keyboard.press('Enter');
    expect(await toggle.getAttribute('aria-expanded')).toBe('true');
    const details = app(page, '/broken').locator('tr.details');
    expect(await details.isVisible()).toBe(true);
    await expect.poll(() => details.locator('table.interpreters tbody tr td.state').first().textContent(), { timeout: 10_000 }).toMatch(/failed|booting/);
    await expect.poll(() => details.locator('.uplot canvas').count()).toBe(2);
    // The app's shared store (an in-process one: the failing app has stored nothing).
    expect(await details.locator('[data-figure="store"]').textContent()).toMatch(/^0 keys · 0\.0 KiB · \d+(\.\d)? ops\/s$/);
    expect(await page.evaluate(OVERFLOW)).toBeLessThanOrEqual(0);
    await page.keyboard.press('Enter');
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    expect(await details.isVisible()).toBe(false);
    expect(await details.locator('.uplot').count()).toBe(0); // charts are drawn only while expanded

    // The picture for the docs: the Python app expanded under load, the failing app above it.
    await app(page, '/py').locator('button.expand').click();
    await expect.poll(() => app(page, '/py').locator('.uplot canvas').count()).toBe(2);
    await expect.poll(() => app(page, '/py').locator('table.interpreters td.state').first().textContent(), { timeout: 20_000 }).toMatch(/idle|busy/);
    expect(await page.evaluate(OVERFLOW)).toBeLessThanOrEqual(0);
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: `${SCREENSHOT_DIR}/admin-dashboard.png`, fullPage: true });
    expect(problems).toEqual([]);
  }, 90_000);

  it('updates the interpreter tables live, and recycles an interpreter', async () => {
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${server.url}/_interpool`);
    for (const name of ['/py', '/', '/stream']) await app(page, name).locator('button.expand').click();

    const pyRows = app(page, '/py').locator('table.interpreters tbody tr');
    const jsRows = app(page, '/').locator('table.interpreters tbody tr');
    await expect.poll(() => pyRows.count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => jsRows.count()).toBe(1);
    expect(await pyRows.first().locator('td.state').textContent()).toMatch(/idle|busy/);

    // It updates without a reload: the served count grows under the load.
    const served = async () => Number(await pyRows.first().locator('td.served').textContent());
    const before = await served();
    await expect.poll(served, { timeout: 10_000 }).toBeGreaterThan(before);
    await expect.poll(async () => Number(await app(page, '/py').locator('td.rate').textContent()), { timeout: 15_000 }).toBeGreaterThan(0);
    expect(await app(page, '/py').locator('svg.sparkline polyline').getAttribute('points')).toMatch(/^[\d.]+,[\d.]+( [\d.]+,[\d.]+)*$/);

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

    // A slow stream shows up as "serving".
    await expect.poll(() => app(page, '/stream').locator('td.serving').first().textContent(), { timeout: 10_000 }).toContain('GET /stream/report');
    expect(await page.evaluate(OVERFLOW)).toBeLessThanOrEqual(0);
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
    expect((await page.goto(`${server.url}/_interpool`))!.status()).toBe(200);
    expect(page.url()).toBe(`${server.url}/_interpool/login`);
    // Without the token, the rest is passed to the app mounted there (hello.ts at /).
    expect(await (await page.goto(`${server.url}/_interpool/api/stats`))!.text()).toBe('Hello, World!\n');
    expect(await (await page.goto(`${server.url}/_interpool/metrics`))!.text()).toBe('Hello, World!\n');

    await page.goto(`${server.url}/_interpool/login`);
    await page.fill('input[name="token"]', 'not-the-token-at-all');
    await Promise.all([page.waitForURL(/\/_interpool\/login\?failed=1$/), page.click('button[type="submit"]')]);
    expect(await page.locator('.failed').textContent()).toContain('wrong token');
    await page.fill('input[name="token"]', TOKEN);
    await Promise.all([page.waitForURL(/\/_interpool\/$/), page.click('button[type="submit"]')]);

    await page.locator('tbody.app[data-app="/"] button.expand').click();
    const row = page.locator('tbody.app[data-app="/"] table.interpreters tbody tr').first();
    await expect.poll(() => row.locator('td.state').textContent(), { timeout: 10_000 }).toBe('idle');
    await row.locator('button.recycle').click();
    await expect.poll(() => row.locator('td.restarts').textContent(), { timeout: 10_000 }).toBe('1');
    const cookies = await page.context().cookies();
    expect(cookies).toEqual([expect.objectContaining({ name: 'interpool_admin', httpOnly: true, sameSite: 'Strict', path: '/_interpool' })]);
    expect(cookies[0]!.value).not.toContain(TOKEN);
    expect(problems).toEqual([]);
  }, 60_000);
});
