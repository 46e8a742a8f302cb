// Booting Python apps: 3.14 and 3.12 side by side, --python-path (importable, read-only),
// a mixed Python/JS server, and apps that fail to import or lack their callable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../server/config.ts';
import { createLogger } from '../../server/logger.ts';
import { openServer } from '../../server/serve.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer(['--config', 'test/fixtures/python/versions.json']);
}, 120_000);
afterAll(() => t?.close());

const text = async (path: string) => (await fetch(`${t.url}${path}`)).text();

describe('Python versions and paths', () => {
  it('serves one app under 3.14 and another under 3.12 in one server', async () => {
    expect(await text('/v314')).toBe('3.14');
    expect(await text('/v312')).toBe('3.12');
    expect(await text('/v312/validated')).toBe('3.12');
    const booted = t.logs.filter((l) => l.msg === 'interpreter booted').map((l) => [l.app, l.version]);
    expect(booted).toContainEqual(['/v314', expect.stringMatching(/^Python 3\.14\.\d+ \(Pyodide 314\./)]);
    expect(booted).toContainEqual(['/v312', expect.stringMatching(/^Python 3\.12\.\d+ \(Pyodide 0\.27\./)]);
  });

  it('serves a JS app beside them, in its own pool', async () => {
    expect(await text('/js')).toBe('Hello, World!\n');
  });

  it('reports the boot stages, named and timed', () => {
    const line = t.logs.find((l) => l.msg === 'interpreter booted' && l.app === '/v314')!;
    const names = (line.stages as { name: string; ms: number }[]).map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['mount paths']));
    expect(names.includes('import app') || names.includes('restore snapshot')).toBe(true);
  });

  it('--python-path makes a host directory importable, on both versions', async () => {
    expect(await text('/lib')).toBe('hello from a --python-path library');
    expect(await text('/lib312/validated')).toBe('hello from a --python-path library');
  });

  it('a --python-path that does not exist is a one-line error naming it', () => {
    expect(() => resolveConfig({ argv: ['apps/hello.py', '--python-path', 'no/such/dir'], env: {}, cwd: process.cwd() })).toThrow(/no\/such\/dir does not exist/);
  });

  it('--python-path directories are mounted read-only', async () => {
    expect(await text('/lib/write')).toBe('refused: Read-only file system');
    expect(await text('/lib312/write')).toBe('refused: Read-only file system');
  });
});

describe('Python boot failures', () => {
  it('an app that fails to import logs its traceback once and gets 503; the other apps keep serving', async () => {
    const broken = await startTestServer(['/broken=test/fixtures/apps/fails-to-import.py', '/js=apps/hello.ts', '--workers', '1']);
    try {
      expect((await fetch(`${broken.url}/broken`)).status).toBe(503);
      expect(await (await fetch(`${broken.url}/js`)).text()).toBe('Hello, World!\n');
      const failures = await waitFor(() => {
        const lines = broken.logs.filter((l) => l.app === '/broken' && /failed to boot/.test(String(l.msg)));
        return lines.length > 0 && lines;
      }, 30_000, 'the boot failure line');
      expect(String(failures[0]!.msg)).toMatch(/fails-to-import\.py: failed to import: KeyError: 'missing-setting'/);
      expect(String(failures[0]!.detail)).toMatch(/Traceback[\s\S]*fails-to-import\.py.*line \d+, in configure/);
      expect(failures.slice(1).every((l) => l.detail === undefined)).toBe(true);
    } finally {
      await broken.close();
    }
  }, 60_000);

  it('an app that imports a module this Python removed: the log line and the admin say what to run it on', async () => {
    const broken = await startTestServer(['/old=test/fixtures/apps/imports-removed-module.py', '--workers', '1']);
    try {
      expect((await fetch(`${broken.url}/old`)).status).toBe(503);
      const failure = await waitFor(() => broken.logs.find((l) => l.app === '/old' && /failed to boot/.test(String(l.msg))), 30_000, 'the boot failure line');
      const fix = '`cgi` was removed in Python 3.13: run this app with --python 3.12, or with --python native on a CPython older than 3.13';
      expect(failure.msg).toBe(`app failed to boot: ${broken.server.groups[0]!.config.file}: failed to import: ModuleNotFoundError: No module named 'cgi'; fix: ${fix}; retrying in 1 s`);
      expect(failure.fix).toBe(fix);
      const stats = await (await fetch(`${broken.url}/_interpool/api/stats`)).json() as { apps: { bootFailure: { fix: string } | null }[] };
      expect(stats.apps[0]!.bootFailure!.fix).toBe(fix);
    } finally {
      await broken.close();
    }
  }, 60_000);

  it('an app without the named callable stops the start and says which callables it has', async () => {
    const config = resolveConfig({ argv: ['/none=test/fixtures/apps/no-callable.py', '--workers', '1', '--bind', '127.0.0.1:0'], env: {}, cwd: process.cwd() });
    const error = await openServer(config, createLogger('silent')).then(async (server) => { await server.close(); }, (failure: Error) => failure);
    expect(error?.message).toMatch(/no callable "application"; callables it defines: create_app/);
  }, 60_000);
});
