/**
 * docs/deployment-scale-out.md, shown: Debian's nginx in front of two interpool
 * processes that share a Redis store. A load runs through nginx while one instance is
 * stopped (SIGTERM: it finishes what it runs) and started again; no request fails, and
 * the shared count is exact: every answer 1..N once, and the store says N.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type Service } from './python-network-services.ts';
import { freePort, startChild, waitFor } from './support.ts';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((path) => existsSync(path));
const REDIS = existsSync('/usr/bin/redis-server');
if (!NGINX || !REDIS) console.warn('scale-out.test.ts skipped: it needs the Debian packages nginx and redis-server');

interface Instance {
  port: number;
  child: ChildProcess;
  output: () => string;
}

/** `interpool serve` as its own process on a fixed port (nginx's upstream names it). */
async function startInstance(port: number, storeUrl: string): Promise<Instance> {
  const { child, output } = await startChild(
    ['test/fixtures/apps/shared-counter.ts', '--workers', '2', '--max-queue', '1000', '--shared-store', storeUrl],
    undefined, `127.0.0.1:${port}`);
  return { port, child, output };
}

async function stopInstance(instance: Instance): Promise<void> {
  if (instance.child.exitCode !== null) return;
  const exited = new Promise((resolve) => instance.child.once('exit', resolve));
  instance.child.kill('SIGTERM');
  await exited;
}

describe.skipIf(!NGINX || !REDIS)('scale-out: nginx in front of two interpool processes sharing a Redis store', () => {
  let redis: Service;
  let storeUrl: string;
  let instances: Instance[] = [];
  let nginx: ChildProcess;
  let prefix: string;
  let port: number;

  beforeAll(async () => {
    redis = await startRedis();
    storeUrl = `redis://127.0.0.1:${redis.port}/0`;
    const ports = [await freePort(), await freePort()];
    instances = await Promise.all(ports.map((upstream) => startInstance(upstream, storeUrl)));
    port = await freePort();
    prefix = mkdtempSync(join(tmpdir(), 'interpool-scale-out-'));
    for (const dir of ['logs', 'tmp']) mkdirSync(join(prefix, dir));
    writeFileSync(join(prefix, 'nginx.conf'), nginxConfig(prefix, port, ports));
    nginx = spawn(NGINX!, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'logs', 'error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitFor(async () => {
      if (nginx.exitCode !== null) throw new Error(`nginx exited ${nginx.exitCode}: ${readFileSync(join(prefix, 'logs', 'error.log'), 'utf8')}`);
      return (await fetch(`http://127.0.0.1:${port}/get`).catch(() => undefined))?.status === 200;
    }, 10_000, 'nginx to answer');
  }, 60_000);

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx.once('exit', resolve));
      nginx.kill('SIGTERM');
      await exited;
    }
    await Promise.all(instances.map(stopInstance));
    await redis?.stop();
    if (prefix) rmSync(prefix, { recursive: true, force: true });
  });

  it('a load through nginx while one instance stops and starts again: no failed request, an exact count', async () => {
    const answers: number[] = [];
    const failures: string[] = [];
    let running = true;
    const client = async () => {
      while (running) {
        try {
          const response = await fetch(`http://127.0.0.1:${port}/incr`);
          const body = await response.text();
          if (response.status === 200) answers.push(Number(body));
          else failures.push(`${response.status} ${body}`);
        } catch (error) {
          failures.push(String(error));
        }
      }
    };
    const clients = Array.from({ length: 8 }, client);
    const [first] = instances;
    // The load runs on both, then on one while the other stops, then on both again.
    await waitFor(() => answers.length >= 200, 30_000, 'the load to run');
    await stopInstance(first!);
    const whileDown = answers.length;
    await waitFor(() => answers.length >= whileDown + 200, 30_000, 'the load to go on with one instance');
    instances[0] = await startInstance(first!.port, storeUrl);
    // Gate on nginx sending requests to the restarted instance again (round robin).
    const restarted = String(instances[0].child.pid);
    await waitFor(async () => (await (await fetch(`http://127.0.0.1:${port}/pid`)).text()) === restarted, 30_000, 'nginx to use the restarted instance');
    const afterRestart = answers.length;
    await waitFor(() => answers.length >= afterRestart + 200, 30_000, 'the load to go on with both');
    running = false;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(answers.length).toBeGreaterThanOrEqual(600);
    expect([...answers].sort((a, b) => a - b)).toEqual(Array.from({ length: answers.length }, (_, i) => i + 1));
    expect(Number(await (await fetch(`http://127.0.0.1:${port}/get`)).text())).toBe(answers.length);
  }, 120_000);
});

/** The upstream block of docs/deployment-scale-out.md, on loopback, without TLS. */
function nginxConfig(prefix: string, listen: number, upstreams: readonly number[]): string {
  const tmp = join(prefix, 'tmp');
  return `
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'logs', 'error.log')} warn;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path ${tmp}/body;
    proxy_temp_path ${tmp}/proxy;
    fastcgi_temp_path ${tmp}/fastcgi;
    uwsgi_temp_path ${tmp}/uwsgi;
    scgi_temp_path ${tmp}/scgi;

    upstream interpool {
${upstreams.map((upstream) => `        server 127.0.0.1:${upstream} max_fails=1 fail_timeout=2s;`).join('\n')}
        keepalive 32;
    }

    server {
        listen 127.0.0.1:${listen};
        location / {
            proxy_pass http://interpool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 2s;
        }
    }
}
`;
}
