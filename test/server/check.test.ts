/**
 * `interpool check` as an operator runs it before a deploy: the real CLI, a real
 * interpreter, its exit code and what it prints.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './support.ts';

const BOOT_MS = 90_000; // a cold Pyodide boot on a busy two-core machine

const check = (...args: string[]) => runCli(['check', ...args]);

describe('interpool check', () => {
  it('a good Python app: engine, stages, snapshot, memory, 200 under wsgiref.validate; exit 0', async () => {
    const run = await check('apps/hello.py');
    expect(run.stdout).toMatch(/^engine +python, Python 3\.14\.\d+ \(Pyodide /m);
    expect(run.stdout).toMatch(/^ +import app +\d+ ms$/m);
    expect(run.stdout).toMatch(/^snapshot +yes/m);
    expect(run.stdout).toMatch(/^memory +[\d.]+ MiB after boot/m);
    expect(run.stdout).toMatch(/^GET \/ +200 OK .*under wsgiref\.validate/m);
    expect(run.stdout).toMatch(/^ok: the app boots and answers$/m);
    expect(run.code).toBe(0);
  }, BOOT_MS);

  it('a good JS app answers through the server\'s own response rules; exit 0', async () => {
    const run = await check('apps/hello.ts');
    expect(run.stdout).toMatch(/^engine +javascript, Node 24\./m);
    expect(run.stdout).toMatch(/^GET \/ +200 OK/m);
    expect(run.code).toBe(0);
  }, BOOT_MS);

  it('an app that raises at import: the exception and its traceback; exit 1', async () => {
    const run = await check('test/fixtures/apps/fails-to-import.py');
    expect(run.stdout).toMatch(/^error +.*fails-to-import\.py: failed to import: KeyError: 'missing-setting'$/m);
    expect(run.stdout).toMatch(/in configure/); // the app's own frame
    expect(run.stdout).toMatch(/^FAILED: the app does not boot$/m);
    expect(run.code).toBe(1);
  }, BOOT_MS);

  it('an app that imports a module removed in 3.13: the fix is named; exit 1', async () => {
    const run = await check('test/fixtures/apps/imports-removed-module.py');
    expect(run.stdout).toMatch(/No module named 'cgi'/);
    expect(run.stdout).toMatch(/^fix +`cgi` was removed in Python 3\.13: run this app with --python 3\.12/m);
    expect(run.code).toBe(1);
  }, BOOT_MS);

  it('an app that breaks PEP 3333 is caught by wsgiref.validate; exit 1', async () => {
    const run = await check('test/fixtures/apps/breaks-wsgi-rules.py');
    expect(run.stdout).toMatch(/^GET \/ +500 /m);
    expect(run.stdout).toMatch(/AssertionError/);
    expect(run.code).toBe(1);
  }, BOOT_MS);

  it('bad usage is one line and exit 2', async () => {
    const run = await check('/a=apps/hello.ts', '/b=apps/hello.ts');
    expect(run.stderr.trim()).toBe('interpool: check takes one app (FILE[:CALLABLE]), got 2');
    expect(run.code).toBe(2);
  });
});
