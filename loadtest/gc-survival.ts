/**
 * How much of what the server's main thread allocates survives its young-generation
 * GCs under load. Each server runs with V8's --trace-gc-nvp while autocannon loads the
 * hello scenario; the main isolate's scavenges are read from its output.
 *
 *   npm run loadtest:gc                      (plain Fastify, then interpool --workers 1 and 2)
 *   npm run loadtest:gc -- --connections 1 --seconds 5
 *
 * Why it exists (docs/loadtest.md, "The promoted garbage"): request state that survives
 * a scavenge is copied, then promoted, then collected by a full GC; when most of it
 * survives, each scavenge takes ~10 ms and the main thread (the bound of the hello
 * benchmark) loses a fifth of its time. Plain Fastify keeps almost nothing, and so should we.
 */
import { parseArgs } from 'node:util';
import { ROOT } from './targets.ts';
import { runLoad } from './measure.ts';
import { scenarios } from './scenarios.ts';
import { findFreePort, ServerProcess, type LaunchSpec } from './server-process.ts';
import { summarize } from './stats.ts';

const { values } = parseArgs({ options: {
  connections: { type: 'string', default: '32' },
  seconds: { type: 'string', default: '8' },
  workers: { type: 'string', multiple: true, default: ['1', '2'] },
} });
const connections = Number(values.connections);
const seconds = Number(values.seconds);
const hello = scenarios.hello;

/** One scavenge of one isolate, from a --trace-gc-nvp line. */
interface Scavenge {
  isolate: string;
  pauseMs: number;
  allocated: number;
  survived: number;
}

function parseScavenge(line: string): Scavenge | undefined {
  if (!line.includes(' gc=s ')) return undefined;
  const isolate = /^\[(\d+:0x[0-9a-f]+)/.exec(line)?.[1];
  const field = (name: string) => Number(new RegExp(`\\b${name}=([0-9.]+)`).exec(line)?.[1] ?? NaN);
  if (!isolate) return undefined;
  return { isolate, pauseMs: field('pause'), allocated: field('allocated'), survived: field('new_space_survived') };
}

async function measure(label: string, launch: (port: number) => LaunchSpec): Promise<void> {
  const port = await findFreePort();
  const scavenges: Scavenge[] = [];
  let measuring = false;
  const spec = launch(port);
  const server = new ServerProcess(label, port, {
    ...spec,
    onLine: (line) => {
      const scavenge = measuring ? parseScavenge(line) : undefined;
      if (scavenge) scavenges.push(scavenge);
    },
    isNotable: (line) => !line.includes(' gc='),
  });
  try {
    await server.waitUntilReady({ method: hello.method, path: hello.path, verify: hello.verifyBody }, 30_000);
    // A short warm-up, so that the figures are the steady state's, not the JIT's.
    await runLoad(server.url, hello, { connections, duration: 2 });
    measuring = true;
    const run = await runLoad(server.url, hello, { connections, duration: seconds });
    measuring = false;
    // The main thread allocates the most: the workers' isolates allocate a little each.
    const byIsolate = Map.groupBy(scavenges, (scavenge) => scavenge.isolate);
    const main = [...byIsolate.values()].sort((a, b) => total(b, 'allocated') - total(a, 'allocated'))[0] ?? [];
    const allocated = total(main, 'allocated');
    const pause = summarize(main.map((scavenge) => scavenge.pauseMs));
    process.stdout.write(`${label}: ${Math.round(run.requestsPerSec).toLocaleString('en-US')} req/s, p99 ${run.p99} ms; ` +
      `main thread: ${main.length} scavenges, ${(allocated / Math.max(1, main.length) / 2 ** 20).toFixed(1)} MiB allocated and ` +
      `${((100 * total(main, 'survived')) / Math.max(1, allocated)).toFixed(1)}% surviving each, pause median ${pause?.median.toFixed(2) ?? '-'} ms ` +
      `(max ${pause?.max.toFixed(2) ?? '-'}); ${Math.round(allocated / Math.max(1, run.good))} bytes allocated per request\n`);
  } finally {
    await server.stop();
  }
}

function total(scavenges: readonly Scavenge[], field: 'allocated' | 'survived'): number {
  return scavenges.reduce((sum, scavenge) => sum + scavenge[field], 0);
}

process.stdout.write(`hello, autocannon -c ${connections} -d ${seconds} (after 2 s of warm-up), --trace-gc-nvp on the server\n`);
await measure('plain Fastify', (port) => ({
  command: process.execPath, cwd: ROOT, args: ['--trace-gc-nvp', 'loadtest/plain-fastify.ts', String(port)],
}));
for (const workers of values.workers) {
  await measure(`interpool --workers ${workers}`, (port) => ({
    command: process.execPath, cwd: ROOT,
    args: ['--trace-gc-nvp', 'bin/interpool.js', 'serve', '/=apps/hello.ts', '--workers', workers, '--bind', `127.0.0.1:${port}`, '--log-level', 'warn'],
  }));
}
