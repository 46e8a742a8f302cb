// Python apps calling other services over real sockets (--python 3.14): an HTTP service
// with urllib.request from the standard library, and MariaDB with Debian's PyMySQL,
// unmodified; a read from a server that never answers ends at --timeout, and under
// --python 3.12 a call fails at once naming the setting to change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DIST_PACKAGES, missingPackages, startHttpService, startMariadb, startSilentService, type Service,
} from './python-network-services.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

const missingMysql = missingPackages([['mariadb-server', '/usr/sbin/mariadbd'], ['python3-pymysql', `${DIST_PACKAGES}/pymysql/__init__.py`]]);
if (missingMysql.length > 0) console.warn(`python-network-services.test.ts: the MariaDB case is skipped: Debian package ${missingMysql.join(' and ')} not installed (apt-get install -y ${missingMysql.join(' ')})`);

const ENV = ['UPSTREAM_URL', 'HANG_URL', 'MYSQL_HOST', 'MYSQL_PORT', 'MYSQL_USER', 'MYSQL_DATABASE'];

describe('Python apps calling services over the network', () => {
  let upstream: Service;
  let silent: Service & { connections: () => number };
  let mariadb: Service | undefined;
  let t: TestServer;
  const upstreamSeen: { method: string; url: string; from: string | undefined; body: string }[] = [];

  beforeAll(async () => {
    upstream = await startHttpService((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      request.on('end', () => {
        upstreamSeen.push({ method: request.method!, url: request.url!, from: request.headers['x-from'] as string | undefined, body });
        response.writeHead(request.url === '/missing' ? 404 : 200, { 'X-Served-By': 'node:http' });
        response.end(request.url === '/missing' ? 'no such thing' : `${request.method} ${request.url} ${body}`);
      });
    });
    silent = await startSilentService();
    if (missingMysql.length === 0) mariadb = await startMariadb();
    // The apps find their services as real ones would: in os.environ.
    Object.assign(process.env, {
      UPSTREAM_URL: `http://127.0.0.1:${upstream.port}`,
      HANG_URL: `http://127.0.0.1:${silent.port}/`,
      MYSQL_HOST: '127.0.0.1',
      MYSQL_PORT: String(mariadb?.port ?? 0),
      MYSQL_USER: 'root',
      MYSQL_DATABASE: 'interpool_test',
    });
    t = await startTestServer(['--config', 'test/fixtures/python/network-services.json']);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await Promise.all([upstream?.stop(), silent?.stop(), mariadb?.stop()]);
    for (const name of ENV) delete process.env[name];
  });

  it('calls an HTTP service with urllib.request: GET, POST and an error status', async () => {
    const answer = async (path: string, init?: RequestInit) => {
      const response = await fetch(`${t.url}/http/fetch${path}`, init);
      expect(response.status).toBe(200);
      return response.json() as Promise<{ status: number; servedBy: string; body: string }>;
    };
    expect(await answer('/items?page=2')).toEqual({ status: 200, servedBy: 'node:http', body: 'GET /items?page=2 ' });
    expect(await answer('/items', { method: 'POST', body: 'name=widget' })).toEqual({ status: 200, servedBy: 'node:http', body: 'POST /items name=widget' });
    expect(await answer('/missing')).toEqual({ status: 404, servedBy: 'node:http', body: 'no such thing' });
    expect(upstreamSeen.at(-2)).toMatchObject({ method: 'POST', from: 'interpool', body: 'name=widget' });
  });

  it('serves many concurrent outbound calls from several interpreters', async () => {
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => fetch(`${t.url}/http/fetch/n/${i}`)));
    const bodies = await Promise.all(responses.map(async (r) => ((await r.json()) as { body: string }).body));
    expect(bodies).toEqual(Array.from({ length: 40 }, (_, i) => `GET /n/${i} `));
  });

  it('ends a read from a server that never answers at --timeout, closes that connection, keeps the interpreter', async () => {
    const response = await fetch(`${t.url}/hang/hang`);
    expect(response.status).toBe(504);
    expect(await response.text()).toContain('INTERPOOL_ERR_TIMEOUT');
    await waitFor(() => silent.connections() === 0, 5000, 'the hanging connection to close');
    expect((await fetch(`${t.url}/hang/fetch/after`)).status).toBe(200);
    expect(t.logs.some((l) => l.app === '/hang' && /terminating its worker/.test(String(l.msg)))).toBe(false);
  }, 20_000);

  it('fails a call on an interrupted socket with ConnectionAbortedError, without spinning', async () => {
    expect((await fetch(`${t.url}/hang/reuse`)).status).toBe(504);
    const last = await waitFor(async () => {
      const response = await fetch(`${t.url}/hang/last-reuse`);
      return response.status === 200 && ((await response.json()) as { after: string | null }).after;
    }, 5000, 'the interrupted request to finish');
    expect(last).toBe('ConnectionAbortedError');
    expect(t.logs.some((l) => l.app === '/hang' && /terminating its worker/.test(String(l.msg)))).toBe(false);
  }, 20_000);

  it('terminates an interpreter that ignores the interrupt while blocked on the network, and its connections close', async () => {
    expect((await fetch(`${t.url}/stubborn/stubborn`)).status).toBe(504);
    await waitFor(() => t.logs.some((l) => l.app === '/stubborn' && /terminating its worker/.test(String(l.msg))), 10_000, 'the worker to be terminated');
    await waitFor(() => silent.connections() === 0, 10_000, 'the terminated interpreter\'s connections to close');
    // Its replacement serves.
    await waitFor(async () => (await fetch(`${t.url}/stubborn/fetch/again`)).status === 200, 20_000, 'a new interpreter');
  }, 40_000);

  it('refuses a connect at import time with a message saying to connect at the first request', async () => {
    const failure = await waitFor(() => t.logs.find((l) => l.app === '/at-import' && /failed to boot/.test(String(l.msg))), 20_000, 'the boot failure');
    expect(String(failure.msg)).toMatch(/NetworkUnavailable: .*cannot connect outside a request .*connect at the first request/);
  }, 30_000);

  it('fails at once under --python 3.12, naming the setting to change', async () => {
    // At once: the app's own error (500), not a wait until --timeout (504).
    expect((await fetch(`${t.url}/http312/fetch/x`)).status).toBe(500);
    const failure = t.logs.find((l) => l.app === '/http312' && l.code === 'INTERPOOL_ERR_APP_RAISED');
    expect(String(failure?.detail)).toMatch(/URLError: .*--python 3\.14/);
  });

  it.skipIf(missingMysql.length > 0)('reads and writes rows in MariaDB with PyMySQL (Debian packages mariadb-server, python3-pymysql)', async () => {
    const written = await Promise.all(['first', 'second', 'third'].map(async (note) => {
      const response = await fetch(`${t.url}/mysql/notes`, { method: 'POST', body: note });
      expect(response.status).toBe(200);
      return ((await response.json()) as { id: number }).id;
    }));
    expect(new Set(written).size).toBe(3);
    const { notes } = (await (await fetch(`${t.url}/mysql/notes`)).json()) as { notes: { id: number; body: string }[] };
    expect(notes.map((n) => n.body).sort()).toEqual(['first', 'second', 'third']);
    expect(notes.map((n) => n.id).sort()).toEqual([...written].sort());
  }, 20_000);
});
