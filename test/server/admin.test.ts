// The admin endpoint on real sockets: the stats JSON under light load, /metrics as
// Prometheus text, who may see it (token path, forged Host, proxied requests), the POST
// actions and their cross-site guard, and --admin-bind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminStats } from '../../server/admin/stats.ts';
import { getRequest, headerOf, rawRequest, startTestServer, waitFor, type TestServer } from './support.ts';

const TOKEN = 'admin-token-for-tests-0123456789';
const ACTION = { 'x-interpool-admin': '1', 'content-type': 'application/json' };

async function stats(base: string, init: RequestInit = {}): Promise<AdminStats> {
  const response = await fetch(`${base}/admin/api/stats`, init);
  expect(response.status).toBe(200);
  return (await response.json()) as AdminStats;
}

/** Parse the Prometheus text exposition format (0.0.4) strictly enough to catch a malformed line. */
function parsePrometheus(text: string): { types: Map<string, string>; samples: { name: string; labels: Record<string, string>; value: number }[] } {
  const types = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) { types.set(type[1]!, type[2]!); continue; }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!sample) throw new Error(`not a Prometheus line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return { types, samples };
}

describe('admin on the public listener', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(['/=apps/hello.ts', '/stream=apps/stream.ts', '--workers', '2', '--admin-token', TOKEN]);
  });
  afterAll(() => server?.close());

  it('GET /admin/api/stats: every app and interpreter, with request figures under light load', async () => {
    await Promise.all(Array.from({ length: 20 }, () => fetch(`${server.url}/`).then((r) => r.text())));
    await fetch(`${server.url}/nothing-here`).then((r) => r.text());
    const slow = fetch(`${server.url}/stream/slow?chunks=3&delay=400&secret=hunter2`).then((r) => r.text());
    const running = await waitFor(async () => {
      const now = await stats(server.url);
      const streamApp = now.apps.find((app) => app.name === '/stream')!;
      return streamApp.interpreters.find((interpreter) => interpreter.request !== null);
    }, 5000, 'the slow request to show as running');
    expect(running.state).toBe('busy');
    expect(running.request).toMatchObject({ method: 'GET', path: '/stream/slow' });
    expect(running.request!.runningMs).toBeGreaterThanOrEqual(0);
    // Only the path: the query string never reaches the stats.
    expect(JSON.stringify(await stats(server.url))).not.toContain('hunter2');
    await slow;

    const body = await stats(server.url, { headers: { accept: 'application/json' } });
    expect(body.server).toMatchObject({ pid: process.pid, node: process.version });
    expect(body.apps.map((app) => app.name)).toEqual(['/', '/stream']);
    const root = body.apps[0]!;
    expect(root).toMatchObject({
      kind: 'javascript', generation: 1, available: true, queue: 0, inFlight: 0,
      workers: { min: 2, max: 2, now: 2 },
    });
    expect(root.version).toMatch(/^Node \d+\./);
    // The root app answers every path, /nothing-here too.
    expect(root.requests.total).toBe(21);
    expect(root.requests.byStatusClass['2xx']).toBe(21);
    expect(root.requests.rejected).toEqual({ '503': 0, '504': 0 });
    expect(root.latencyMs.p50).toBeGreaterThan(0);
    expect(root.latencyMs.p99!).toBeGreaterThanOrEqual(root.latencyMs.p50!);
    expect(root.exits.crashed).toBe(0);
    expect(root.interpreters).toHaveLength(2);
    expect(root.interpreters.reduce((sum, interpreter) => sum + interpreter.served, 0)).toBe(21);
    for (const interpreter of root.interpreters) {
      expect(interpreter).toMatchObject({ generation: 1, state: 'idle', request: null, restarts: 0, lastExit: null });
      expect(interpreter.memoryBytes).toBeGreaterThan(0);
      expect(interpreter.boot).toMatchObject({ kind: 'cold', error: null });
      expect(interpreter.boot!.stages.map((stage) => stage.name)).toEqual(['import app', 'find callable']);
    }
    expect(root.interpreters.map((interpreter) => interpreter.slot)).toEqual([1, 2]);
    expect(root.history).toBeUndefined();

    // The history holds whole seconds only: wait for the current one to end.
    await new Promise((resolve) => setTimeout(resolve, 1010 - (Date.now() % 1000)));
    const withHistory = (await fetch(`${server.url}/admin/api/stats?history=1`).then((r) => r.json())) as AdminStats;
    const history = withHistory.apps[0]!.history!;
    // One point per whole second since the server started, up to five minutes (the
    // clock may tick between reading the figures and the history: one second either way).
    expect(Math.abs(history.requests.length - (Math.floor(withHistory.server.now / 1000) - history.start))).toBeLessThanOrEqual(1);
    expect(history.p99).toHaveLength(history.requests.length);
    expect(history.requests.reduce((sum, count) => sum + count, 0)).toBeGreaterThan(0);
  });

  it('GET /metrics: Prometheus text with requests, latency, queue, states, memory, exits and boots', async () => {
    await fetch(`${server.url}/`).then((r) => r.text());
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const { types, samples } = parsePrometheus(await response.text());
    const find = (name: string, labels: Record<string, string> = {}) => samples.filter((sample) => sample.name === name
      && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));

    expect(types.get('interpool_requests_total')).toBe('counter');
    expect(find('interpool_requests_total', { app: '/', status: '200' })[0]!.value).toBeGreaterThanOrEqual(1);
    expect(types.get('interpool_request_duration_seconds')).toBe('histogram');
    expect(find('interpool_request_duration_seconds_bucket', { app: '/', status: '200', le: '+Inf' })[0]!.value).toBeGreaterThanOrEqual(1);
    expect(types.get('interpool_queue_depth')).toBe('gauge');
    expect(find('interpool_queue_depth', { app: '/stream' })[0]!.value).toBe(0);
    expect(find('interpool_interpreters', { app: '/', state: 'idle' })[0]!.value).toBe(2);
    expect(find('interpool_interpreters', { app: '/', state: 'busy' })[0]!.value).toBe(0);
    expect(find('interpool_interpreter_memory_bytes', { app: '/' })).toHaveLength(2);
    expect(types.get('interpool_interpreter_exits_total')).toBe('counter');
    expect(find('interpool_interpreter_exits_total', { app: '/', reason: 'crashed' })[0]!.value).toBe(0);
    expect(types.get('interpool_interpreter_boot_seconds')).toBe('histogram');
    expect(find('interpool_interpreter_boot_seconds_count', { app: '/', kind: 'javascript', boot: 'cold' })[0]!.value).toBe(2);
    expect(find('interpool_interpreter_boot_stage_seconds_count', { app: '/', stage: 'import app' })[0]!.value).toBe(2);
    expect(find('process_cpu_user_seconds_total')).toHaveLength(1);
    // The admin's own requests are not counted as app requests.
    expect(find('interpool_requests_total', { app: '/', status: '404' })).toHaveLength(0);
  });

  it('the dashboard page and its assets are served by the server itself', async () => {
    const page = await fetch(`${server.url}/admin`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await page.text();
    for (const src of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      const asset = await fetch(`${server.url}${src[1]}`);
      expect(asset.status, src[1]).toBe(200);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(10);
    }
    expect(html).toContain('/admin/assets/uPlot.iife.min.js');
  });

  describe('who may see it', () => {
    // A request that came through a proxy (forwarding headers) is not a local operator:
    // the way to be "not loopback" on a test machine's loopback socket.
    const proxied = 'X-Forwarded-For: 203.0.113.9';

    it('refuses non-local clients with a 404, whatever the Host header says', async () => {
      for (const path of ['/admin', '/admin/', '/admin/api/stats', '/metrics', '/admin/assets/dashboard.js', '/admin/nope']) {
        for (const host of ['Host: localhost', 'Host: 127.0.0.1']) {
          const response = await rawRequest(server.port, getRequest(path, [proxied]).replace('Host: localhost', host));
          expect(response.status, `${path} ${host}`).toBe(404);
          expect(response.body.toString()).toBe(`no app is mounted at ${path} (INTERPOOL_ERR_NOT_FOUND)\n`);
        }
      }
    });

    it('refuses a loopback connection whose Host is a DNS name (rebinding)', async () => {
      const response = await rawRequest(server.port, getRequest('/admin/api/stats').replace('Host: localhost', 'Host: rebind.example:80'));
      expect(response.status).toBe(404);
      const allowed = await rawRequest(server.port, getRequest('/admin/api/stats'));
      expect(allowed.status).toBe(200);
    });

    it('lets a non-local client in with the Bearer token', async () => {
      const response = await rawRequest(server.port, getRequest('/admin/api/stats', [proxied, `Authorization: Bearer ${TOKEN}`]));
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body.toString()).apps).toHaveLength(2);
      const metrics = await rawRequest(server.port, getRequest('/metrics', [proxied, `Authorization: Bearer ${TOKEN}`]));
      expect(metrics.status).toBe(200);
      const wrong = await rawRequest(server.port, getRequest('/metrics', [proxied, 'Authorization: Bearer not-the-token-0000000000']));
      expect(wrong.status).toBe(404);
    });

    it('signs in with the token through the form, and keeps it in an HttpOnly SameSite cookie', async () => {
      const form = await rawRequest(server.port, getRequest('/admin/login', [proxied]));
      expect(form.status).toBe(200);
      expect(form.body.toString()).toContain('name="token"');
      const post = (token: string) => rawRequest(server.port, [
        'POST /admin/login HTTP/1.1', 'Host: localhost', proxied, 'Content-Type: application/x-www-form-urlencoded',
        `Content-Length: ${`token=${token}`.length}`, 'Connection: close', '', `token=${token}`,
      ].join('\r\n'));
      const wrong = await post('wrong-token-wrong-token');
      expect(wrong.status).toBe(303);
      expect(headerOf(wrong, 'set-cookie')).toBeUndefined();
      const right = await post(TOKEN);
      expect(right.status).toBe(303);
      expect(headerOf(right, 'location')).toBe('/admin/');
      const cookie = headerOf(right, 'set-cookie')!;
      expect(cookie).toMatch(/^interpool_admin=[\w-]+; Path=\/admin; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
      expect(cookie).not.toContain(TOKEN);
      const page = await rawRequest(server.port, getRequest('/admin/api/stats', [proxied, `Cookie: ${cookie.split(';')[0]}`]));
      expect(page.status).toBe(200);
    });
  });

  describe('actions', () => {
    it('recycles one interpreter: its slot restarts, with the reason', async () => {
      const before = (await stats(server.url)).apps[0]!;
      const target = before.interpreters[0]!;
      const response = await fetch(`${server.url}/admin/api/recycle`, { method: 'POST', headers: ACTION, body: JSON.stringify({ app: '/', workerId: target.workerId }) });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ app: '/', workerId: target.workerId, recycled: true });
      const after = await waitFor(async () => {
        const app = (await stats(server.url)).apps[0]!;
        const slot = app.interpreters.find((interpreter) => interpreter.slot === target.slot);
        return slot && slot.workerId !== target.workerId && slot.state === 'idle' ? app : undefined;
      }, 10_000, 'the recycled interpreter to be replaced');
      const slot = after.interpreters.find((interpreter) => interpreter.slot === target.slot)!;
      expect(slot).toMatchObject({ restarts: 1, lastExit: 'recycled', served: 0 });
      expect(after.exits.recycled).toBe(before.exits.recycled + 1);
      expect(await fetch(`${server.url}/`).then((r) => r.text())).toBe('Hello, World!\n');
    });

    it('reloads an app: a new generation takes over every slot', async () => {
      const response = await fetch(`${server.url}/admin/api/reload`, { method: 'POST', headers: ACTION, body: JSON.stringify({ app: '/stream' }) });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ results: [{ app: '/stream', ok: true }] });
      const app = await waitFor(async () => {
        const current = (await stats(server.url)).apps[1]!;
        return current.exits.reload === 2 ? current : undefined;
      }, 10_000, 'the old generation to exit');
      expect(app.generation).toBe(2);
      expect(app.interpreters.map((interpreter) => [interpreter.slot, interpreter.restarts, interpreter.lastExit])).toEqual([[1, 1, 'reload'], [2, 1, 'reload']]);
    });

    it('refuses GET, requests without the header, cross-site origins, and unknown targets', async () => {
      const recycle = (init: RequestInit) => fetch(`${server.url}/admin/api/recycle`, init);
      const get = await recycle({});
      expect(get.status).toBe(405);
      expect(get.headers.get('allow')).toBe('POST');
      const form = await recycle({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'app=/&workerId=1' });
      expect(form.status).toBe(403);
      expect(await form.text()).toContain('INTERPOOL_ERR_ADMIN_CROSS_SITE');
      const crossSite = await recycle({ method: 'POST', headers: { ...ACTION, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' }, body: '{"app":"/","workerId":1}' });
      expect(crossSite.status).toBe(403);
      const unknownWorker = await recycle({ method: 'POST', headers: ACTION, body: '{"app":"/","workerId":999999}' });
      expect(unknownWorker.status).toBe(404);
      expect(await unknownWorker.text()).toContain('INTERPOOL_ERR_ADMIN_TARGET');
      const unknownApp = await fetch(`${server.url}/admin/api/reload`, { method: 'POST', headers: ACTION, body: '{"app":"/nope"}' });
      expect(unknownApp.status).toBe(404);
      const badBody = await recycle({ method: 'POST', headers: ACTION, body: 'not json' });
      expect(badBody.status).toBe(400);
      // Refused before any of that when the client may not see the admin at all.
      const outsider = await rawRequest(server.port, [
        'POST /admin/api/reload HTTP/1.1', 'Host: localhost', 'X-Forwarded-For: 203.0.113.9', 'X-Interpool-Admin: 1',
        'Content-Length: 2', 'Connection: close', '', '{}',
      ].join('\r\n'));
      expect(outsider.status).toBe(404);
    });
  });
});

describe('--admin-bind: the admin on its own listener', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(['apps/hello.ts', '--workers', '1', '--admin-bind', '127.0.0.1:0', '--admin-path', '/ops']);
  });
  afterAll(() => server?.close());

  it('serves the admin there, and leaves /metrics and the admin path to the apps on the public listener', async () => {
    const adminUrl = server.server.adminUrl!;
    expect(adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${adminUrl}/ops/api/stats`).then((r) => r.json()) as AdminStats).apps[0]!.name).toBe('/');
    expect((await fetch(`${adminUrl}/metrics`)).status).toBe(200);
    expect(await fetch(`${server.url}/metrics`).then((r) => r.text())).toBe('Hello, World!\n');
    expect(await fetch(`${server.url}/ops/api/stats`).then((r) => r.text())).toBe('Hello, World!\n');
    const refused = await rawRequest(Number(new URL(adminUrl).port), getRequest('/ops/api/stats', ['X-Forwarded-For: 203.0.113.9']));
    expect(refused.status).toBe(401);
    expect(headerOf(refused, 'www-authenticate')).toContain('Bearer');
  });
});
