// Python apps reaching Redis with Debian's redis-py, unmodified, over real sockets
// (Pyodide 314's Node socket layer): a hit counter under concurrent requests from
// several interpreters, one connection per interpreter, timeouts while blocked on a
// read the server never answers, recycled interpreters' connections closed, and a
// clear error under --python 3.12, which has no socket layer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST_PACKAGES, missingPackages, redisCli, startRedis, type Service } from './python-network-services.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

const missing = missingPackages([['redis-server', '/usr/bin/redis-server'], ['python3-redis', `${DIST_PACKAGES}/redis/__init__.py`]]);
if (missing.length > 0) console.warn(`python-network-redis.test.ts skipped: Debian package ${missing.join(' and ')} not installed (apt-get install -y ${missing.join(' ')})`);

interface Hit { hits: number; interpreter: string }
interface Whoami { interpreter: string; connection: number }

describe.skipIf(missing.length > 0)('Python apps with redis-py (Debian packages redis-server, python3-redis)', () => {
  let redis: Service;
  let t: TestServer;
  const get = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${t.url}${path}`);
    expect(response.status, `${path}: ${response.status}`).toBe(200);
    return (await response.json()) as T;
  };
  /** The ids of the clients connected to Redis, without redis-cli's own. */
  const connectedIds = (): number[] => redisCli(redis.port, 'client', 'list').trim().split('\n')
    .filter((line) => !/cmd=client\|list/.test(line)).map((line) => Number(/\bid=(\d+)/.exec(line)![1]));

  beforeAll(async () => {
    redis = await startRedis();
    // The app finds its Redis as a real one would: in os.environ.
    process.env.REDIS_URL = `redis://127.0.0.1:${redis.port}/0`;
    t = await startTestServer(['--config', 'test/fixtures/python/network-redis.json']);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await redis?.stop();
    delete process.env.REDIS_URL;
  });

  it('counts every hit of concurrent requests served by several interpreters', async () => {
    await get('/redis/reset');
    const total = 90;
    const hits = await Promise.all(Array.from({ length: total }, () => get<Hit>('/redis/incr')));
    expect(new Set(hits.map((h) => h.hits)).size).toBe(total);
    expect(new Set(hits.map((h) => h.interpreter)).size).toBeGreaterThan(1);
    expect((await get<Hit>('/redis/count')).hits).toBe(total);
  }, 30_000);

  it('keeps one connection per interpreter, made at its first command', async () => {
    const seen = await Promise.all(Array.from({ length: 30 }, () => get<Whoami>('/redis/whoami')));
    const byInterpreter = new Map<string, Set<number>>();
    for (const { interpreter, connection } of seen) byInterpreter.set(interpreter, (byInterpreter.get(interpreter) ?? new Set()).add(connection));
    expect(byInterpreter.size).toBeGreaterThan(1);
    expect(byInterpreter.size).toBeLessThanOrEqual(3);
    for (const connections of byInterpreter.values()) expect(connections.size).toBe(1);
  }, 30_000);

  it('times out a read the server never answers, keeps the interpreter, and drops that connection', async () => {
    // /blocking has a single interpreter.
    const before = await get<Whoami>('/blocking/whoami');
    const blocked = await fetch(`${t.url}/blocking/block`);
    expect(blocked.status).toBe(504);
    expect(await blocked.text()).toContain('INTERPOOL_ERR_TIMEOUT');
    // The connection that was waiting in BLPOP is closed on both sides...
    await waitFor(() => !connectedIds().includes(before.connection), 5000, 'the blocked connection to close');
    // ...and the same interpreter goes on serving, on a new connection.
    const after = await get<Whoami>('/blocking/whoami');
    expect(after.interpreter).toBe(before.interpreter);
    expect(after.connection).not.toBe(before.connection);
    expect(t.logs.some((l) => l.app === '/blocking' && /terminating its worker/.test(String(l.msg)))).toBe(false);
  }, 20_000);

  it('closes the connections of a recycled interpreter', async () => {
    // maxRequests 2: every other request is served by a new interpreter.
    const seen: Whoami[] = [];
    for (let i = 0; i < 6; i++) seen.push(await get<Whoami>('/recycled/whoami'));
    const interpreters = [...new Set(seen.map((s) => s.interpreter))];
    expect(interpreters.length).toBeGreaterThanOrEqual(3);
    const current = seen.at(-1)!;
    const retired = new Set(seen.filter((s) => s.interpreter !== current.interpreter).map((s) => s.connection));
    await waitFor(() => connectedIds().every((id) => !retired.has(id)), 10_000, 'the retired interpreters\' connections to close');
  }, 60_000);

  it('fails at once under --python 3.12, naming the setting to change', async () => {
    // At once: the app's own error (500), not a wait until --timeout (504).
    for (let i = 0; i < 2; i++) expect((await fetch(`${t.url}/v312/incr`)).status).toBe(500);
    const failure = t.logs.find((l) => l.app === '/v312' && l.code === 'INTERPOOL_ERR_APP_RAISED');
    expect(String(failure?.detail)).toMatch(/NetworkUnavailable: .*--python 3\.14/);
  }, 20_000);
});
