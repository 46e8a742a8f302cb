// The admin endpoint on real sockets: the stats JSON under light load, /metrics as
// Prometheus text, who may see it (token path, forged Host, proxied requests, sign-in
// throttling), the POST actions and their cross-site guard, --admin-bind, and the
// start-up warning for an admin a local proxy would open.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminStats } from '../../server/admin/stats.ts';
import { fileGate } from './gates.ts';
import { exchange } from './hardening-support.ts';
import { getRequest, headerOf, rawRequest, startChild, startTestServer, waitFor, type RawResponse, type TestServer } from './support.ts';

const TOKEN = 'admin-token-for-tests-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const ACTION = { 'x-interpool-admin': '1', 'content-type': 'application/json', ...AUTH };

async function stats(base: string, init: RequestInit = {}): Promise<AdminStats> {
  const response = await fetch(`${base}/_interpool/api/stats`, { ...init, headers: { ...AUTH, ...init.headers } });
  expect(response.status).toBe(200);
  return (await response.json()) as AdminStats;
}

/**
 * Parse the Prometheus text exposition format (0.0.4) strictly enough to catch a malformed
 * line. A value is what Go's ParseFloat reads, NaN in any case: prom-client writes "Nan"
 * (nodejs_eventloop_lag_mean_seconds when scraped before the loop's delay has a sample).
 */
function parsePrometheus(text: string): { types: Map<string, string>; samples: { name: string; labels: Record<string, string>; value: number }[] } {
  const types = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) { types.set(type[1]!, type[2]!); continue; }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|\+Inf|-Inf)$/.exec(line);
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
    server = await startTestServer(['/=apps/hello.ts', '/stream=test/fixtures/apps/waits-for-gate.ts', '--workers', '2', '--admin-token', TOKEN]);
  });
  afterAll(() => server?.close());

  it('GET /_interpool/api/stats: every app and interpreter, with request figures under light load', async () => {
    await Promise.all(Array.from({ length: 20 }, () => fetch(`${server.url}/`).then((r) => r.text())));
    await fetch(`${server.url}/nothing-here`).then((r) => r.text());
    // Held in the app until the test opens its gate: it is running while the stats are read.
    const gates = mkdtempSync(join(tmpdir(), 'interpool-admin-gate-'));
    const gate = fileGate(gates, 'slow');
    const slow = fetch(`${server.url}/stream/slow?${gate.query}&secret=hunter2`).then((r) => r.text());
    await gate.entered();
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
    gate.open();
    expect(await slow).toBe('GET /slow\n');
    rmSync(gates, { recursive: true, force: true });

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

    // The history holds whole seconds only: poll until a second with these requests is over.
    const withHistory = await waitFor(async () => {
      const now = (await fetch(`${server.url}/_interpool/api/stats?history=1`, { headers: AUTH }).then((r) => r.json())) as AdminStats;
      return now.apps[0]!.history!.requests.some((count) => count > 0) && now;
    }, 10_000, 'a whole second with requests in the history');
    const history = withHistory.apps[0]!.history!;
    // One point per whole second since the server started, up to five minutes (the
    // clock may tick between reading the figures and the history: one second either way).
    expect(Math.abs(history.requests.length - (Math.floor(withHistory.server.now / 1000) - history.start))).toBeLessThanOrEqual(1);
    expect(history.p99).toHaveLength(history.requests.length);
    expect(history.requests.reduce((sum, count) => sum + count, 0)).toBeGreaterThan(0);
  });

  it('GET /_interpool/metrics: Prometheus text with requests, latency, queue, states, memory, exits and boots', async () => {
    await fetch(`${server.url}/`).then((r) => r.text());
    const response = await fetch(`${server.url}/_interpool/metrics`, { headers: AUTH });
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
    const page = await fetch(`${server.url}/_interpool`, { headers: AUTH });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await page.text();
    for (const src of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      const asset = await fetch(`${server.url}${src[1]}`, { headers: AUTH });
      expect(asset.status, src[1]).toBe(200);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(10);
    }
    expect(html).toContain('/_interpool/assets/uPlot.iife.min.js');
  });

  describe('who may see it', () => {
    // A request that came through a proxy (forwarding headers) is not a local operator:
    // the way to be "not loopback" on a test machine's loopback socket.
    const proxied = 'X-Forwarded-For: 203.0.113.9';
    /** One request from this loopback address (each test its own, so that the sign-in throttle keeps them apart). */
    const from = async (localAddress: string, request: string): Promise<RawResponse> => (await exchange(server.port, request, { localAddress })).response;
    const signIn = (token: string, extra: string[] = []) => [
      'POST /_interpool/login HTTP/1.1', 'Host: localhost', ...extra, 'Content-Type: application/x-www-form-urlencoded',
      `Content-Length: ${`token=${token}`.length}`, 'Connection: close', '', `token=${token}`,
    ].join('\r\n');

    it('passes a client it refuses to the app mounted there (hello.ts at /), whatever the Host header says; /metrics is that app\'s', async () => {
      for (const path of ['/_interpool/api/stats', '/_interpool/metrics', '/metrics', '/_interpool/assets/dashboard.js', '/_interpool/nope']) {
        for (const host of ['Host: localhost', 'Host: 127.0.0.1']) {
          const response = await rawRequest(server.port, getRequest(path, [proxied]).replace('Host: localhost', host));
          expect(response.status, `${path} ${host}`).toBe(200);
          expect(response.body.toString()).toBe('Hello, World!\n');
        }
      }
      expect(await fetch(`${server.url}/metrics`, { headers: AUTH }).then((r) => r.text())).toBe('Hello, World!\n');
    });

    it('with --admin-token, loopback clients need the token too (behind a local proxy every client is loopback)', async () => {
      // Without it they are passed to the app at / like any client the admin refuses.
      const stats = await rawRequest(server.port, getRequest('/_interpool/api/stats'));
      expect(stats.body.toString()).toBe('Hello, World!\n');
      const metrics = await rawRequest(server.port, getRequest('/_interpool/metrics'));
      expect(metrics.body.toString()).toBe('Hello, World!\n');
      const reload = await rawRequest(server.port, getRequest('/_interpool/api/reload', ['X-Interpool-Admin: 1', 'Content-Length: 2'], 'POST').replace('\r\n\r\n', '\r\n\r\n{}'));
      expect(reload.body.toString()).toBe('Hello, World!\n');
      expect(server.logs.some((line) => line.msg === 'admin: reload')).toBe(false);
      // The dashboard page sends a browser to the sign-in form.
      const page = await rawRequest(server.port, getRequest('/_interpool'));
      expect(page.status).toBe(303);
      expect(headerOf(page, 'location')).toBe('/_interpool/login');
      const allowed = await rawRequest(server.port, getRequest('/_interpool/api/stats', [`Authorization: Bearer ${TOKEN}`]));
      expect(allowed.status).toBe(200);
    });

    it('lets a non-local client in with the Bearer token', async () => {
      const response = await from('127.0.0.3', getRequest('/_interpool/api/stats', [proxied, `Authorization: Bearer ${TOKEN}`]));
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body.toString()).apps).toHaveLength(2);
      const metrics = await from('127.0.0.3', getRequest('/_interpool/metrics', [proxied, `Authorization: Bearer ${TOKEN}`]));
      expect(metrics.status).toBe(200);
      // A wrong token is the admin's to refuse (and count), not passed on.
      const wrong = await from('127.0.0.3', getRequest('/_interpool/metrics', [proxied, 'Authorization: Bearer not-the-token-0000000000']));
      expect(wrong.status).toBe(404);
      expect(wrong.body.toString()).toBe('no app is mounted at /_interpool/metrics (INTERPOOL_ERR_NOT_FOUND)\n');
    });

    it('signs in with the token through the form, and keeps it in an HttpOnly SameSite cookie', async () => {
      const form = await from('127.0.0.4', getRequest('/_interpool/login', [proxied]));
      expect(form.status).toBe(200);
      expect(form.body.toString()).toContain('name="token"');
      const wrong = await from('127.0.0.4', signIn('wrong-token-wrong-token', [proxied]));
      expect(wrong.status).toBe(303);
      expect(headerOf(wrong, 'set-cookie')).toBeUndefined();
      const right = await from('127.0.0.4', signIn(TOKEN, [proxied]));
      expect(right.status).toBe(303);
      expect(headerOf(right, 'location')).toBe('/_interpool/');
      const cookie = headerOf(right, 'set-cookie')!;
      expect(cookie).toMatch(/^interpool_admin=[\w-]+; Path=\/_interpool; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
      expect(cookie).not.toContain(TOKEN);
      const page = await from('127.0.0.4', getRequest('/_interpool/api/stats', [proxied, `Cookie: ${cookie.split(';')[0]}`]));
      expect(page.status).toBe(200);
      // A stale cookie (the token changed) is refused, counted, and cleared.
      const stale = await from('127.0.0.4', getRequest('/_interpool/api/stats', [proxied, 'Cookie: interpool_admin=stale']));
      expect(stale.status).toBe(404);
      expect(headerOf(stale, 'set-cookie')).toMatch(/^interpool_admin=; Path=\/_interpool; Max-Age=0/);
    });

    it('five wrong tokens from one client, then 429 with Retry-After, even for the right token; other clients go on', async () => {
      for (let attempt = 1; attempt <= 5; attempt++) {
        const wrong = await from('127.0.0.5', signIn(`wrong-token-number-${attempt}`));
        expect(wrong.status, `attempt ${attempt}`).toBe(303);
        expect(headerOf(wrong, 'location')).toBe('/_interpool/login?failed=1');
      }
      const throttled = await from('127.0.0.5', signIn('wrong-token-number-6'));
      expect(throttled.status).toBe(429);
      const retryAfter = Number(headerOf(throttled, 'retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(throttled.body.toString()).toMatch(/^too many wrong admin tokens from this client; try again in \d+ s \(INTERPOOL_ERR_ADMIN_THROTTLED\)\n$/);
      // Throttled, the right token tells nothing either: no oracle for the guesser.
      expect((await from('127.0.0.5', signIn(TOKEN))).status).toBe(429);
      expect((await from('127.0.0.5', getRequest('/_interpool/api/stats', [`Authorization: Bearer ${TOKEN}`]))).status).toBe(429);
      // Another client is not held back.
      const other = await from('127.0.0.6', signIn(TOKEN));
      expect(other.status).toBe(303);
      expect(headerOf(other, 'location')).toBe('/_interpool/');
      // Logged once per failure, and once when the client is throttled.
      const failures = server.logs.filter((line) => line.msg === 'admin sign-in refused: wrong token' && line.remote === '127.0.0.5');
      expect(failures).toHaveLength(5);
      expect(server.logs.filter((line) => String(line.msg).startsWith('admin sign-in throttled') && line.client === '127.0.0.5')).toHaveLength(1);
    });

    it('behind a trusted proxy, the throttle counts and the log names the forwarded client', async () => {
      // 127.0.0.1 is trusted by the default --forwarded-allow-ips (127.0.0.1,::1).
      const bearer = (client: string, token: string) => from('127.0.0.1', getRequest('/_interpool/api/stats', [`X-Forwarded-For: ${client}`, `Authorization: Bearer ${token}`]));
      for (let attempt = 1; attempt <= 5; attempt++) expect((await bearer('198.51.100.7', `wrong-bearer-number-${attempt}`)).status).toBe(404);
      expect((await bearer('198.51.100.7', 'wrong-bearer-number-6')).status).toBe(429);
      expect((await bearer('198.51.100.8', TOKEN)).status).toBe(200);
      const refusals = server.logs.filter((line) => line.msg === 'admin access refused' && line.client === '198.51.100.7');
      expect(refusals).toHaveLength(5);
      expect(refusals[0]).toMatchObject({ remote: '127.0.0.1', path: '/_interpool/api/stats', reason: 'wrong token' });
    });

    it('an untrusted peer cannot dodge the throttle by naming other clients in X-Forwarded-For', async () => {
      const bearer = (client: string) => from('127.0.0.8', getRequest('/_interpool/api/stats', [`X-Forwarded-For: ${client}`, 'Authorization: Bearer wrong-bearer-0000000000']));
      for (let attempt = 1; attempt <= 5; attempt++) expect((await bearer(`198.51.100.${attempt}`)).status).toBe(404);
      expect((await bearer('198.51.100.99')).status).toBe(429);
    });
  });

  describe('actions', () => {
    it('recycles one interpreter: its slot restarts, with the reason', async () => {
      const before = (await stats(server.url)).apps[0]!;
      const target = before.interpreters[0]!;
      const response = await fetch(`${server.url}/_interpool/api/recycle`, { method: 'POST', headers: ACTION, body: JSON.stringify({ app: '/', workerId: target.workerId }) });
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
      const response = await fetch(`${server.url}/_interpool/api/reload`, { method: 'POST', headers: ACTION, body: JSON.stringify({ app: '/stream' }) });
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
      const recycle = (init: RequestInit) => fetch(`${server.url}/_interpool/api/recycle`, init);
      const get = await recycle({ headers: AUTH });
      expect(get.status).toBe(405);
      expect(get.headers.get('allow')).toBe('POST');
      const form = await recycle({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...AUTH }, body: 'app=/&workerId=1' });
      expect(form.status).toBe(403);
      expect(await form.text()).toContain('INTERPOOL_ERR_ADMIN_CROSS_SITE');
      const crossSite = await recycle({ method: 'POST', headers: { ...ACTION, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' }, body: '{"app":"/","workerId":1}' });
      expect(crossSite.status).toBe(403);
      const unknownWorker = await recycle({ method: 'POST', headers: ACTION, body: '{"app":"/","workerId":999999}' });
      expect(unknownWorker.status).toBe(404);
      expect(await unknownWorker.text()).toContain('INTERPOOL_ERR_ADMIN_TARGET');
      const unknownApp = await fetch(`${server.url}/_interpool/api/reload`, { method: 'POST', headers: ACTION, body: '{"app":"/nope"}' });
      expect(unknownApp.status).toBe(404);
      const badBody = await recycle({ method: 'POST', headers: ACTION, body: 'not json' });
      expect(badBody.status).toBe(400);
      // Before any of that, a client that may not see the admin at all is passed to the app at /.
      const outsider = await rawRequest(server.port, [
        'POST /_interpool/api/reload HTTP/1.1', 'Host: localhost', 'X-Interpool-Admin: 1',
        'Content-Length: 2', 'Connection: close', '', '{}',
      ].join('\r\n'));
      expect(outsider.body.toString()).toBe('Hello, World!\n');
    });
  });
});

describe('admin without a token: only clients the server can be sure are local', () => {
  let server: TestServer;

  beforeAll(async () => {
    // No app at / (none under the admin's paths): a refused client gets the admin's 404.
    server = await startTestServer(['/hello=apps/hello.ts', '--workers', '1']);
  });
  afterAll(() => server?.close());

  it('answers a plain loopback request', async () => {
    expect((await rawRequest(server.port, getRequest('/_interpool/api/stats'))).status).toBe(200);
    expect((await rawRequest(server.port, getRequest('/metrics'))).status).toBe(200);
  });

  it.each([
    ['X-Forwarded-Proto', 'X-Forwarded-Proto: https'],
    ['X-Forwarded-Host', 'X-Forwarded-Host: app.example'],
    ['X-Forwarded-Port', 'X-Forwarded-Port: 443'],
    ['Via', 'Via: 1.1 proxy'],
    ['X-Real-IP', 'X-Real-IP: 203.0.113.9'],
    ['Forwarded', 'Forwarded: for=203.0.113.9'],
    ['X-Forwarded-For naming a remote client', 'X-Forwarded-For: 203.0.113.9'],
    ['X-Forwarded-For naming a loopback client', 'X-Forwarded-For: 127.0.0.1'],
  ])('refuses a request carrying %s: a proxy passed it on', async (_name, header) => {
    for (const path of ['/_interpool/api/stats', '/metrics']) {
      const response = await rawRequest(server.port, getRequest(path, [header]));
      expect(response.status, path).toBe(404);
    }
    const reload = await rawRequest(server.port, [
      'POST /_interpool/api/reload HTTP/1.1', 'Host: localhost', header, 'X-Interpool-Admin: 1', 'Content-Length: 2', 'Connection: close', '', '{}',
    ].join('\r\n'));
    expect(reload.status).toBe(404);
  });

  it('logs the forwarded client of a trusted proxy when it refuses', async () => {
    await rawRequest(server.port, getRequest('/_interpool/api/stats', ['X-Forwarded-For: 203.0.113.44']));
    const line = await waitFor(() => server.logs.find((entry) => entry.msg === 'admin access refused' && entry.client === '203.0.113.44'), 5000, 'the refusal line');
    expect(line).toMatchObject({ remote: '127.0.0.1', path: '/_interpool/api/stats', reason: expect.stringMatching(/x-forwarded-for/) });
  });

  it.each([
    ['[::1]evil.com', false], ['[::1]:80evil', false], ['127.0.0.1.evil.com', false], ['localhost:80:80', false],
    ['[::1]', true], ['[::1]:8000', true], ['localhost.', true], ['LOCALHOST', true],
  ])('Host: %s → allowed %s', async (host, allowed) => {
    const response = await rawRequest(server.port, getRequest('/_interpool/api/stats').replace('Host: localhost', `Host: ${host}`));
    if (allowed) expect(response.status).toBe(200);
    // 404 from the admin, or 400 if the HTTP layer already refuses such a Host.
    else expect([400, 404]).toContain(response.status);
  });
});

describe('an app\'s own paths: the admin keeps to /_interpool and passes the clients it refuses to the app', () => {
  let server: TestServer;
  let moved: TestServer;

  beforeAll(async () => {
    [server, moved] = await Promise.all([
      startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1']),
      startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1', '--admin-path', '/admin']),
    ]);
  });
  afterAll(async () => {
    await Promise.all([server?.close(), moved?.close()]);
  });
  const environOf = (response: RawResponse) => JSON.parse(response.body.toString()) as Record<string, string>;

  it('an app at / keeps /admin and /metrics, for local clients too; the admin answers under /_interpool', async () => {
    for (const path of ['/admin', '/admin/login/', '/metrics']) {
      const response = await rawRequest(server.port, getRequest(path));
      expect(response.status, path).toBe(200);
      expect(environOf(response).PATH_INFO, path).toBe(path);
    }
    const stats = await rawRequest(server.port, getRequest('/_interpool/api/stats'));
    expect((JSON.parse(stats.body.toString()) as AdminStats).apps[0]!.name).toBe('/');
    const metrics = await rawRequest(server.port, getRequest('/_interpool/metrics'));
    expect(headerOf(metrics, 'content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('with --admin-path /admin, a client behind a proxy reaches the app\'s /admin (a Django admin), body and all; a local one the dashboard', async () => {
    const local = await rawRequest(moved.port, getRequest('/admin/api/stats'));
    expect((JSON.parse(local.body.toString()) as AdminStats).apps).toHaveLength(1);
    const proxied = await rawRequest(moved.port, [
      'POST /admin/login/ HTTP/1.1', 'Host: app.example', 'X-Forwarded-For: 203.0.113.9', 'X-Forwarded-Proto: https',
      'Content-Type: application/x-www-form-urlencoded', 'Content-Length: 27', 'Connection: close', '', 'username=ann&password=pass1',
    ].join('\r\n'));
    expect(proxied.status).toBe(200);
    expect(environOf(proxied)).toMatchObject({ REQUEST_METHOD: 'POST', PATH_INFO: '/admin/login/', CONTENT_LENGTH: '27', REMOTE_ADDR: '203.0.113.9', 'wsgi.url_scheme': 'https' });
    // Nothing of the admin shows: no refusal, no admin headers.
    expect(headerOf(proxied, 'x-frame-options')).toBeUndefined();
    expect(moved.logs.some((line) => line.msg === 'admin access refused')).toBe(false);
  });
});

describe('the start-up warning: the admin on the public listener, no token, a trusted proxy', () => {
  const stop = (child: ChildProcess) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const WARNING = /behind a reverse proxy on this machine every client looks local/;

  it('is logged, before listening, by default', async () => {
    const { child, output } = await startChild(['apps/hello.ts', '--workers', '1']);
    try {
      expect(output()).toMatch(WARNING);
      expect(output().search(WARNING)).toBeLessThan(output().search(/listening on/));
      expect(output()).toMatch(/"level":40/);
      // And where the dashboard is, once listening.
      await waitFor(() => /admin dashboard at http:\/\/127\.0\.0\.1:\d+\/_interpool /.test(output()), 10_000, 'the dashboard line');
    } finally {
      stop(child);
    }
  });

  it('is not logged with --admin-bind', async () => {
    const { child, output } = await startChild(['apps/hello.ts', '--workers', '1', '--admin-bind', '127.0.0.1:0']);
    try {
      expect(output()).not.toMatch(WARNING);
    } finally {
      stop(child);
    }
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

describe('the stats JSON and /metrics: process memory and CPU, interpreter memory, boot failures', () => {
  let server: TestServer;
  let dir: string;
  const appAnswering = (text: string) => `export function application(_environ, startResponse) {\n  startResponse('200 OK', []);\n  return [new TextEncoder().encode('${text}')];\n}\n`;
  const appFailing = "function configure() {\n  throw new TypeError('no DATABASE_URL');\n}\nconfigure();\n";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'interpool-admin-reload-'));
    writeFileSync(join(dir, 'app.mjs'), appAnswering('v1'));
    server = await startTestServer(['/broken=test/fixtures/apps/fails-to-import.py', '/=apps/hello.ts', `/reloaded=${join(dir, 'app.mjs')}`, '--workers', '1']);
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the process, every interpreter\'s memory, and why an app fails to boot — to the admin, never to clients', async () => {
    const refused = await fetch(`${server.url}/broken/`);
    expect(refused.status).toBe(503);
    const publicBody = await refused.text();
    for (const secret of ['KeyError', 'missing-setting', 'Traceback', 'fails-to-import', 'configure']) expect(publicBody).not.toContain(secret);
    expect(await fetch(`${server.url}/`).then((r) => r.text())).toBe('Hello, World!\n');

    // Counted once the response is finished on the server, which may be after the client read it.
    const { process: usage, apps } = await waitFor(async () => {
      const current = await stats(server.url);
      return current.apps.every((app) => app.requests.total === (app.name === '/reloaded' ? 0 : 1)) && current;
    }, 5000, 'both requests counted');
    expect(usage.rssBytes).toBeGreaterThan(usage.heapUsedBytes);
    expect(usage.heapUsedBytes).toBeGreaterThan(0);
    expect(usage.heapTotalBytes).toBeGreaterThanOrEqual(usage.heapUsedBytes);
    expect(usage.cpuPercent).toBeGreaterThanOrEqual(0);

    const hello = apps.find((app) => app.name === '/')!;
    expect(hello.engine).toMatch(/^Node 24\./);
    expect(hello.bootFailure).toBeNull();
    expect(hello.interpreters[0]!.memoryBytes).toBeGreaterThan(0);
    expect(hello.memoryBytes).toBe(hello.interpreters[0]!.memoryBytes);
    expect(hello.requests.errors).toMatchObject({ windowSeconds: 60, serverErrors: 0, rate: 0 });

    const broken = apps.find((app) => app.name === '/broken')!;
    expect(broken.available).toBe(false);
    expect(broken.engine).toBe('Python 3.14 (Pyodide)');
    expect(broken.requests.errors).toMatchObject({ responses: 1, serverErrors: 1, rate: 1 });
    const failure = broken.bootFailure!;
    expect(failure.exception).toEqual({ type: 'KeyError', message: "'missing-setting'" });
    expect(failure.message).toContain("KeyError: 'missing-setting'");
    // Only the app's own frames: not interpool's loader, not importlib.
    expect(failure.frames.map(({ file, line, function: name, code }) => ({ file, line, name, code }))).toEqual([
      { file: broken.file, line: 8, name: '<module>', code: 'configure()' },
      { file: broken.file, line: 5, name: 'configure', code: 'return {}["missing-setting"]' },
    ]);
    expect(failure.traceback).toMatch(/^Traceback[\s\S]*interpool_wsgi\.py/);
    expect(failure.attempts).toBeGreaterThanOrEqual(1);
    expect(failure.nextRetryAt).toBeGreaterThan(failure.at);

    const { samples } = parsePrometheus(await fetch(`${server.url}/_interpool/metrics`, { headers: AUTH }).then((r) => r.text()));
    const value = (name: string, labels: Record<string, string> = {}) => samples.find((sample) => sample.name === name
      && Object.entries(labels).every(([key, wanted]) => sample.labels[key] === wanted))?.value;
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(value('interpool_interpreter_memory_bytes', { app: '/' })).toBeGreaterThan(0);
    expect(value('interpool_app_boot_failures', { app: '/broken' })).toBeGreaterThanOrEqual(1);
    expect(value('interpool_app_boot_failures', { app: '/' })).toBe(0);
  });

  it('shows a reload that failed to boot while the running interpreters keep serving, until a reload succeeds', async () => {
    const file = join(dir, 'app.mjs');
    const reload = async () => ((await fetch(`${server.url}/_interpool/api/reload`, { method: 'POST', headers: ACTION, body: JSON.stringify({ app: '/reloaded' }) })
      .then((r) => r.json())) as { results: { ok: boolean }[] }).results[0]!;
    const reloaded = async () => (await stats(server.url)).apps.find((app) => app.name === '/reloaded')!;

    writeFileSync(file, appFailing);
    expect(await reload()).toMatchObject({ ok: false });
    expect(await fetch(`${server.url}/reloaded/`).then((r) => r.text())).toBe('v1');
    const failed = await reloaded();
    expect(failed.available).toBe(true);
    expect(failed.bootFailure).toBeNull();
    expect(failed.reloadFailure!.exception).toEqual({ type: 'TypeError', message: 'no DATABASE_URL' });
    expect(failed.reloadFailure!.frames.map(({ file: where, line, function: name }) => ({ where, line, name }))).toEqual([
      { where: file, line: 2, name: 'configure' },
      { where: file, line: 4, name: null },
    ]);

    writeFileSync(file, appAnswering('v2'));
    expect(await reload()).toMatchObject({ ok: true });
    expect(await fetch(`${server.url}/reloaded/`).then((r) => r.text())).toBe('v2');
    expect((await reloaded()).reloadFailure).toBeNull();
  });
});
