/**
 * The shared store's benchmark (docs/shared-store.md, issue 14): `incr` requests a
 * second from an app with 2 interpreters, in the same run and the same rounds:
 *
 *   - the in-process store (the default: a message to the main thread and back),
 *   - the Redis store (--shared-store redis://…: the main thread's one connection),
 *   - the app calling Redis itself with redis-py (apps/redis_counter.py: one
 *     connection per interpreter), the way an app shares state without the store,
 *
 * for Python (Pyodide) and, for the first two, JavaScript. A benchmark, not a test: it
 * asserts nothing, and it counts a response only when it is a 200 with a count.
 *
 *   npm run loadtest:shared-store                        # 3 rounds of 5 s each
 *   npm run loadtest:shared-store -- --runs 5 --duration 10 --connections 32
 *
 * Needs redis-server (and python3-redis for the redis-py row, which is left out
 * without it). Writes loadtest/results/<UTC time>-shared-store.{json,md}.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad, type RunResult } from './measure.ts';
import { findFreePort, ServerProcess } from './server-process.ts';
import type { Scenario } from './scenarios.ts';
import { summarize } from './stats.ts';

const DIST_PACKAGES = '/usr/lib/python3/dist-packages';
const PYODIDE_START_MS = 180_000;

const { values: options } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '16' },
  },
});
const runs = Math.max(1, Number(options.runs));
const duration = Math.max(1, Number(options.duration));
const connections = Math.max(1, Number(options.connections));

interface Target {
  label: string;
  args: string[];
  env?: Record<string, string>;
}

/** GET / answers {"hits": N}: good when it is a count. */
const INCR: Scenario = {
  name: 'hello',
  title: 'incr through the shared store',
  app: 'shared_counter',
  method: 'GET',
  path: '/',
  verifyBody: (body) => /^\{"hits": ?\d+\}\n$/.test(body),
};

async function startRedis(): Promise<{ url: string; stop: () => void }> {
  const port = await findFreePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  // Ready once it accepts a connection.
  for (let attempt = 0; ; attempt++) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (accepted) break;
    if (attempt > 100 || child.exitCode !== null) throw new Error('redis-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url: `redis://127.0.0.1:${port}/0`, stop: () => child.kill('SIGTERM') };
}

function targetsFor(redisUrl: string): Target[] {
  const serve = (app: string, ...more: string[]) => [app, '--workers', '2', '--max-queue', '1000', ...more];
  const targets: Target[] = [
    { label: 'Python, in-process store', args: serve('apps/shared_counter.py') },
    { label: 'Python, Redis store', args: serve('apps/shared_counter.py', '--shared-store', redisUrl) },
    { label: 'JS, in-process store', args: serve('apps/shared_counter.ts') },
    { label: 'JS, Redis store', args: serve('apps/shared_counter.ts', '--shared-store', redisUrl) },
  ];
  if (existsSync(`${DIST_PACKAGES}/redis/__init__.py`)) {
    targets.push({ label: 'Python, redis-py in the app', args: serve('apps/redis_counter.py', '--python-path', DIST_PACKAGES), env: { REDIS_URL: redisUrl } });
  } else {
    console.error('python3-redis is not installed: the redis-py row is left out');
  }
  return targets;
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const targets = targetsFor(redis.url);
  const servers: ServerProcess[] = [];
  const results = new Map<string, RunResult[]>(targets.map((target) => [target.label, []]));
  try {
    for (const target of targets) {
      const port = await findFreePort();
      const server = new ServerProcess(target.label, port, {
        command: process.execPath,
        args: ['bin/interpool.js', 'serve', ...target.args, '--bind', `127.0.0.1:${port}`, '--log-level', 'warn'],
        cwd: process.cwd(),
        ...(target.env ? { env: target.env } : {}),
      });
      servers.push(server);
      await server.waitUntilReady({ method: 'GET', path: '/', verify: INCR.verifyBody }, PYODIDE_START_MS);
      console.error(`ready: ${target.label}`);
    }
    // Warm-up, then rounds in an order that rotates, so that noise falls on all alike.
    for (const server of servers) await runLoad(server.url, INCR, { connections, duration: 1 });
    for (let round = 0; round < runs; round++) {
      for (let i = 0; i < servers.length; i++) {
        const server = servers[(i + round) % servers.length]!;
        const result = await runLoad(server.url, INCR, { connections, duration });
        results.get(server.label)!.push(result);
        console.error(`round ${round + 1}: ${server.label}: ${Math.round(result.requestsPerSec)} incr/s, p99 ${result.p99} ms, bad ${result.errors + result.non2xx + result.wrongBody}`);
      }
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    redis.stop();
  }
  report(targets, results);
}

function report(targets: readonly Target[], results: Map<string, RunResult[]>): void {
  const reference = summarize(results.get(targets[0]!.label)!.map((run) => run.requestsPerSec))?.median ?? NaN;
  const lines = [
    `# Shared store: incr/s from 2 interpreters`,
    '',
    `${runs} rounds of ${duration} s, ${connections} connections; ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} CPUs; ${new Date().toISOString()}`,
    '',
    '| server | incr/s median (min–max) | vs Python in-process | p99 ms (median) | bad responses |',
    '|---|---|---|---|---|',
  ];
  for (const { label } of targets) {
    const runsOf = results.get(label)!;
    const rate = summarize(runsOf.map((run) => run.requestsPerSec));
    const p99 = summarize(runsOf.map((run) => run.p99));
    const bad = runsOf.reduce((sum, run) => sum + run.errors + run.non2xx + run.wrongBody, 0);
    lines.push(`| ${label} | ${rate ? `${Math.round(rate.median)} (${Math.round(rate.min)}–${Math.round(rate.max)})` : '-'} | ${rate ? (rate.median / reference).toFixed(2) : '-'} | ${p99?.median ?? '-'} | ${bad} |`);
  }
  const markdown = `${lines.join('\n')}\n`;
  const dir = join('loadtest', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().slice(0, 16).replace(':', '').replace('T', '-');
  writeFileSync(join(dir, `${stamp}-shared-store.json`), JSON.stringify({ runs, duration, connections, results: Object.fromEntries(results) }, null, 2));
  writeFileSync(join(dir, `${stamp}-shared-store.md`), markdown);
  process.stdout.write(markdown);
}

await main();
