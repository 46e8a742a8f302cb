// --boot-timeout: an app whose import never finishes (waiting on an unreachable host, a
// lock, a sleep) fails to boot like an app whose import raises: the server listens, the
// other apps serve, this one answers 503 while its boot is retried, and the log says why.
// Before, the server waited for that import for ever and never listened, for any app.
import { afterEach, describe, expect, it } from 'vitest';
import { engineTitle, MAIN_RUN, nativeEngines } from './python-engines.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer | undefined;
afterEach(async () => { await t?.close(); t = undefined; });

const BOUNDS = ['--boot-timeout', '1', '--timeout-grace', '1', '--workers', '1'];

async function expectBootTimedOut(server: TestServer, message: RegExp, python: boolean): Promise<void> {
  expect(await (await fetch(`${server.url}/ok/`)).text()).toBe('Hello, World!\n');
  const response = await fetch(`${server.url}/`);
  expect(response.status).toBe(503);
  expect(await response.text()).toMatch(/INTERPOOL_ERR_APP_UNAVAILABLE/);
  const line = await waitFor(() => server.logs.find((l) => l.app === '/' && /app failed to boot/.test(String(l.msg))), 10_000, 'the boot failure line');
  expect(String(line.msg)).toMatch(message);
  // Python's fix names the usual cause; a JavaScript app's line is its message alone.
  if (python) expect(String(line.fix)).toMatch(/^the app's import did not finish within --boot-timeout and was interrupted/);
}

/** The boot goes on being retried, each attempt a boot failure of its own. */
async function expectRetried(server: TestServer): Promise<void> {
  const attempts = () => server.logs.filter((l) => l.app === '/' && /app failed to boot/.test(String(l.msg))).length;
  await waitFor(() => attempts() >= 3, 40_000, 'a third boot attempt');
}

describe('--boot-timeout', () => {
  // JavaScript is tested in the main run only (the other one is for CPython 3.11).
  it.runIf(MAIN_RUN)('JavaScript: an import that never settles is ended after the grace, a boot failure', async () => {
    t = await startTestServer(['/=test/fixtures/apps/hangs-at-import.ts', '/ok=apps/hello.ts', ...BOUNDS]);
    await expectBootTimedOut(t, /did not finish importing within --boot-timeout \(1 s\), nor stop within --timeout-grace once interrupted/, false);
    // Before: two attempts, then none (piscina starts no worker after one that ended before it was ready).
    await expectRetried(t);
  }, 60_000);

  for (const engine of nativeEngines()) {
    it.skipIf(engine.skip !== undefined)(`${engineTitle(engine)}: the import is interrupted where it waits, its traceback in the log`, async () => {
      t = await startTestServer(['/=test/fixtures/apps/hangs-at-import.py', '/ok=apps/hello.py', ...BOUNDS, ...engine.args]);
      await expectBootTimedOut(t, /hangs-at-import\.py: failed to import: interpool\.RequestTimeout/, true);
      const line = t.logs.find((l) => l.app === '/' && /app failed to boot/.test(String(l.msg)))!;
      expect(String(line.detail)).toMatch(/hangs-at-import\.py", line 5, in <module>\n\s+time\.sleep\(3600\)/);
    });

    // Before: the worker was terminated while Python still ran, counted as stuck, and
    // after two attempts the app was never retried again.
    it.skipIf(engine.skip !== undefined)(`${engineTitle(engine)}: an import that catches the interrupt and waits again is made to unwind, and retried`, async () => {
      t = await startTestServer(['/=test/fixtures/apps/swallows-boot-timeout.py', '/ok=apps/hello.py', ...BOUNDS, ...engine.args]);
      // The unwinding may end the import inside the adapter's own except clause too: the
      // line is the same. (Before: "the native engine failed (PYTHON_EXCEPTION)", no fix.)
      await expectBootTimedOut(t, /swallows-boot-timeout\.py: failed to import: interpool\.RequestTimeout/, true);
      await expectRetried(t);
      expect(t.logs.some((l) => /stuck/.test(String(l.msg)))).toBe(false);
    }, 60_000);
  }
});
