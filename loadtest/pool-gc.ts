/**
 * How much garbage-collection work one task costs the main thread: 32 logical clients
 * keep 2 workers busy with hello-sized tasks for a fixed time, through piscina or
 * through plain MessagePorts, and the main thread's GC is read from perf_hooks.
 *
 *   npm run loadtest:pool-gc     (both transports, one after the other)
 *
 * Why it exists (docs/loadtest.md, "Where the main thread's time goes"): under load the
 * server's young-generation collections promote most per-request objects. This
 * reproduces it with piscina alone, without HTTP, next to the same traffic over ports.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Piscina } from 'piscina';

const { values } = parseArgs({ options: {
  transport: { type: 'string', default: 'piscina' },
  seconds: { type: 'string', default: '4' },
} });
const WORKER = new URL('./pool-gc-worker.ts', import.meta.url);
const CLIENTS = 32;
const WORKERS = 2;

type Send = (id: number) => Promise<unknown>;

async function piscinaTransport(): Promise<{ send: Send; close: () => Promise<void> }> {
  const pool = new Piscina({ filename: fileURLToPath(WORKER), minThreads: WORKERS, maxThreads: WORKERS, concurrentTasksPerWorker: 1, atomics: 'async' });
  await Promise.all(Array.from({ length: WORKERS }, (_, id) => pool.run({ id })));
  return { send: (id) => pool.run({ id }), close: () => pool.destroy() };
}

async function portTransport(): Promise<{ send: Send; close: () => Promise<void> }> {
  const pending = new Map<number, (result: unknown) => void>();
  const threads: Worker[] = [];
  const ports: MessagePort[] = [];
  for (let index = 0; index < WORKERS; index++) {
    const thread = new Worker(WORKER);
    const { port1, port2 } = new MessageChannel();
    thread.postMessage({ port: port2 }, [port2]);
    port1.on('message', (result: { id: number }) => {
      const resolve = pending.get(result.id)!;
      pending.delete(result.id);
      resolve(result);
    });
    threads.push(thread);
    ports.push(port1);
  }
  let next = 0;
  const send: Send = (id) => new Promise((resolve) => {
    pending.set(id, resolve);
    ports[next++ % WORKERS]!.postMessage({ id });
  });
  await Promise.all(Array.from({ length: WORKERS }, (_, id) => send(id)));
  return { send, close: async () => { for (const port of ports) port.close(); await Promise.all(threads.map((thread) => thread.terminate())); } };
}

const transport = values.transport === 'ports' ? await portTransport() : await piscinaTransport();

// At most WORKERS tasks in flight, as the server's admission queue allows; the rest wait.
const waiting: (() => void)[] = [];
let inFlight = 0;
let nextId = 100;
function admit(): Promise<void> {
  if (inFlight < WORKERS) { inFlight++; return Promise.resolve(); }
  return new Promise((resolve) => waiting.push(resolve));
}
function release(): void {
  const next = waiting.shift();
  if (next) next(); else inFlight--;
}

const gc = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as PerformanceEntry & { detail: { kind: number } }).detail.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) { gc.minor++; gc.minorMs += entry.duration; }
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) { gc.major++; gc.majorMs += entry.duration; }
  }
});
observer.observe({ entryTypes: ['gc'] });

const deadline = Date.now() + Number(values.seconds) * 1000;
let tasks = 0;
async function client(): Promise<void> {
  while (Date.now() < deadline) {
    await admit();
    await transport.send(nextId++);
    release();
    tasks++;
  }
}
await Promise.all(Array.from({ length: CLIENTS }, client));
await new Promise((resolve) => setTimeout(resolve, 100));
observer.disconnect();
await transport.close();

const perTask = (ms: number) => ((ms * 1000) / tasks).toFixed(2);
process.stdout.write(`${values.transport}: ${Math.round(tasks / Number(values.seconds))} tasks/s; ` +
  `minor GCs ${gc.minor} (${(gc.minorMs / Math.max(1, gc.minor)).toFixed(2)} ms each), major GCs ${gc.major}; ` +
  `main-thread GC ${perTask(gc.minorMs + gc.majorMs)} µs per task\n`);
