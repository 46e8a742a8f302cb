// Real frameworks, unmodified, as a new user would run them: Debian 12's Flask, Bottle,
// Django (ORM on SQLite), Falcon, Pyramid, WebOb, Werkzeug and SQLAlchemy, with
// --python-path /usr/lib/python3/dist-packages, on each Python engine: Pyodide 3.12,
// and the native engine on each CPython it is built for. The packages are made for
// CPython 3.11: Python 3.13 removed `cgi`, so there the frameworks that import it must
// fail to boot with the line that names the module and the fix, and the others must pass
// the same checks as on 3.11.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listNativeBuilds } from '../../native/builds.ts';
import { engineTitle, pythonEngines, type PythonEngine } from './python-engines.ts';
import { getRequest, headerOf, rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

const DIST = '/usr/lib/python3/dist-packages';
const FIXTURES = 'test/fixtures/apps';

interface Framework {
  name: string;
  /** The Debian package, and a file of it that says it is installed. */
  debian: [string, string];
  mount: string;
  app: string;
  /** The framework's redirect status for a GET. */
  redirect: number;
  /** It renders /page?name= through its template engine (or the one it is used with). */
  template?: true;
  /** It stores notes through an ORM on SQLite (POST /notes, GET /notes/:id). */
  orm?: true;
}

const FRAMEWORKS: Framework[] = [
  { name: 'Flask', debian: ['python3-flask', 'flask/__init__.py'], mount: '/flask', app: 'apps/flask_app.py:app', redirect: 302, template: true },
  { name: 'Bottle', debian: ['python3-bottle', 'bottle.py'], mount: '/bottle', app: `${FIXTURES}/bottle-app.py:app`, redirect: 303, template: true },
  { name: 'Django', debian: ['python3-django', 'django/__init__.py'], mount: '/django', app: 'apps/django_app/wsgi.py', redirect: 302, template: true, orm: true },
  { name: 'Falcon', debian: ['python3-falcon', 'falcon/__init__.py'], mount: '/falcon', app: `${FIXTURES}/falcon-app.py:app`, redirect: 302 },
  { name: 'Pyramid', debian: ['python3-pyramid', 'pyramid/__init__.py'], mount: '/pyramid', app: `${FIXTURES}/pyramid-app.py:app`, redirect: 302 },
  { name: 'WebOb', debian: ['python3-webob', 'webob/__init__.py'], mount: '/webob', app: `${FIXTURES}/webob-app.py:app`, redirect: 302 },
  { name: 'Werkzeug', debian: ['python3-werkzeug', 'werkzeug/__init__.py'], mount: '/werkzeug', app: `${FIXTURES}/werkzeug-app.py:app`, redirect: 302, template: true },
  { name: 'SQLAlchemy', debian: ['python3-sqlalchemy', 'sqlalchemy/__init__.py'], mount: '/sqlalchemy', app: `${FIXTURES}/sqlalchemy-app.py:app`, redirect: 302, orm: true },
];

const DJANGO = FRAMEWORKS.find(({ name }) => name === 'Django')!;

const missing = FRAMEWORKS.filter(({ debian: [, file] }) => !existsSync(`${DIST}/${file}`)).map(({ debian: [name] }) => name);
if (missing.length > 0) {
  console.warn(`skipping the framework tests: Debian packages not installed (apt-get install -y ${missing.join(' ')} python3-jinja2)`);
}

/** The module each framework cannot import on this engine (undefined: it boots). */
function missingModule(engine: PythonEngine, framework: Framework): string | undefined {
  if (engine.name === 'native CPython 3.13') {
    // Python 3.13 removed `cgi` (PEP 594); Debian 12's packages still import it.
    return ['Bottle', 'Django', 'Falcon', 'Pyramid', 'WebOb'].includes(framework.name) ? 'cgi' : undefined;
  }
  if (engine.name === 'pyodide') {
    // Pyodide 0.27 (Python 3.12) has no `sqlite3`.
    return ['Django', 'SQLAlchemy'].includes(framework.name) ? 'sqlite3' : undefined;
  }
  return undefined;
}

/** Pyodide's default Python (3.14) cannot import these packages; 3.12 can. */
const argsOf = (engine: PythonEngine) => (engine.name === 'pyodide' ? ['--python', '3.12'] : engine.args);

for (const engine of pythonEngines()) {
  describe.skipIf(engine.skip !== undefined || missing.length > 0)(`Debian's frameworks, unmodified, on ${engineTitle(engine)}`, () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer([
        ...FRAMEWORKS.map(({ mount, app }) => `${mount}=${app}`),
        '--python-path', DIST, '--workers', '1', ...argsOf(engine),
      ]);
    }, 180_000);
    afterAll(() => t?.close());

    const booting = FRAMEWORKS.filter((framework) => missingModule(engine, framework) === undefined);
    const failing = FRAMEWORKS.filter((framework) => missingModule(engine, framework) !== undefined);

    describe.each(booting.map((framework) => [framework.name, framework] as const))('%s', (_name, { name, mount, redirect, template, orm }) => {
      it('routes a GET', async () => {
        const response = await fetch(`${t.url}${mount}/`);
        expect(response.status).toBe(200);
        expect(await response.text()).toBe(`Hello from ${name}!\n`);
      });

      it('answers JSON from a route with a parameter, reading a cookie', async () => {
        const response = await fetch(`${t.url}${mount}/hello/ada`, { headers: { cookie: 'visits=3' } });
        expect(response.headers.get('content-type')).toMatch(/^application\/json/);
        expect(await response.json()).toEqual({ greeting: 'Hello, ada!', visits: 3 });
      });

      it('parses a form POST and sets a cookie', async () => {
        const response = await fetch(`${t.url}${mount}/form`, { method: 'POST', body: new URLSearchParams({ name: 'Ada', lang: 'en' }) });
        expect(await response.json()).toEqual({ name: 'Ada', fields: ['lang', 'name'] });
        expect(response.headers.get('set-cookie')).toMatch(/^visits=1/);
      });

      it('redirects within its mount', async () => {
        const response = await rawRequest(t.port, getRequest(`${mount}/old`));
        expect(response.status).toBe(redirect);
        expect(new URL(headerOf(response, 'location')!, t.url).pathname).toBe(`${mount}/`);
      });

      it('answers 404 from the framework for an unknown path', async () => {
        const response = await fetch(`${t.url}${mount}/no/such/page`);
        expect(response.status).toBe(404);
        expect(await response.text()).toMatch(/Not Found/i);
      });

      it.runIf(template)('renders a template, escaping what it is given', async () => {
        const response = await fetch(`${t.url}${mount}/page?name=${encodeURIComponent('<Ada>')}`);
        expect(response.headers.get('content-type')).toMatch(/^text\/html/);
        expect(await response.text()).toContain('<h1>Hello, &lt;Ada&gt;!</h1>');
      });

      it.runIf(orm)('writes a row through its ORM and reads it back', async () => {
        // The SQLite file may hold rows of earlier runs (Django's is shared by its interpreters).
        const text = `note ${Math.random().toString(36).slice(2)}`;
        const created = await fetch(`${t.url}${mount}/notes`, { method: 'POST', body: new URLSearchParams({ text }) });
        expect(created.status).toBe(201);
        const note = (await created.json()) as { id: number; text: string; count: number };
        expect(note).toMatchObject({ text, count: expect.any(Number) as number });
        expect(note.count).toBeGreaterThanOrEqual(1);
        expect(await (await fetch(`${t.url}${mount}/notes/${note.id}`)).json()).toEqual({ id: note.id, text });
        expect((await fetch(`${t.url}${mount}/notes/${note.id + 1_000_000}`)).status).toBe(404);
      });
    });

    // The README's Django example: four interpreters import the app at once and share one
    // SQLite file; one migrates while the others wait (its flock), then writes from all
    // four land. A fresh file (DJANGO_APP_DB, read by CPython from the process's environment).
    it.runIf(engine.name !== 'pyodide' && missingModule(engine, DJANGO) === undefined)('Django in four interpreters sharing one new SQLite file', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'interpool-django-'));
      process.env.DJANGO_APP_DB = join(dir, 'notes.sqlite3');
      const four = await startTestServer([`/django=${DJANGO.app}`, '--python-path', DIST, '--workers', '4', ...argsOf(engine)]);
      try {
        await waitFor(() => four.logs.filter((l) => l.app === '/django' && l.msg === 'interpreter booted').length === 4, 60_000, 'four Django interpreters booted');
        const texts = Array.from({ length: 12 }, (_, i) => `note ${i}`);
        const created = await Promise.all(texts.map(async (text) => {
          const response = await fetch(`${four.url}/django/notes`, { method: 'POST', body: new URLSearchParams({ text }) });
          expect(response.status).toBe(201);
          return (await response.json()) as { id: number };
        }));
        expect(new Set(created.map(({ id }) => id)).size).toBe(12);
        expect(await (await fetch(`${four.url}/django/page?name=all`)).text()).toContain('<p>12 notes.</p>');
        expect(four.logs.filter((l) => /failed to boot/.test(String(l.msg)))).toEqual([]);
      } finally {
        delete process.env.DJANGO_APP_DB;
        await four.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);

    it.runIf(failing.length > 0)(`${failing.map(({ name }) => name).join(', ') || 'none'} fail to boot with the line that names the missing module`, async () => {
      for (const framework of failing) {
        const module = missingModule(engine, framework)!;
        expect((await fetch(`${t.url}${framework.mount}/`)).status).toBe(503);
        const failure = await waitFor(() => t.logs.find((l) => l.app === framework.mount && /failed to boot/.test(String(l.msg))), 30_000, `${framework.name}'s boot failure line`);
        expect(String(failure.msg)).toContain(`failed to import: ModuleNotFoundError: No module named '${module}'`);
        if (module === 'cgi') {
          // The fix names the CPythons older than 3.13 the engine is built for (CI builds 3.11).
          const older = listNativeBuilds().filter(({ version }) => Number(version.split('.')[1]) < 13);
          const ways = older.length > 0 ? older.map(({ executable }) => `with --cpython ${executable}`).join(', or ') : 'on a CPython older than 3.13 (';
          expect(failure.fix).toContain(`\`cgi\` was removed in Python 3.13: run this app ${ways}`);
          expect(failure.fix).toMatch(/, or with --python 3\.12 \(Pyodide\)$/);
        }
      }
    }, 60_000);
  });
}
