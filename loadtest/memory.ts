/**
 * Memory and start (`--only memory`), issue 18's cost table in one run: the process's RSS
 * (the whole tree) idle with 1, 2 and 4 interpreters, per added interpreter, after a 15 s
 * hello load on 2 and 30 s after that load ends; and how long the first interpreter of a
 * server started again takes (a warm on-disk runtime snapshot), next to the same server's
 * first start with an empty cache. The same for gunicorn's sync workers (master + N
 * workers). Every server gets a cache directory of its own, so the first start is cold.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseBoot, type BootReport } from './boot.ts';
import { runLoad } from './measure.ts';
import type { Progress } from './progress.ts';
import { HELLO_BODY, scenarios } from './scenarios.ts';
import { ServerProcess, findFreePort, type LaunchSpec } from './server-process.ts';
import { summarize } from './stats.ts';
import { findExecutable, interpoolTarget } from './targets.ts';

export interface MemoryVariant {
  id: string;
  label: string;
  engine: 'interpool' | 'gunicorn';
  python?: string;
  absent?: string;
}

export interface MemoryResult {
  id: string;
  label: string;
  status: 'measured' | 'absent' | 'failed';
  reason?: string;
  /** Idle RSS (MiB) by number of interpreters (gunicorn: worker processes), every one booted. */
  idleMiB?: Record<string, number>;
  /** (idle with 4 − idle with 1) / 3. */
  perAddedMiB?: number;
  load?: {
    seconds: number;
    workers: number;
    connections: number;
    requestsPerSec: number;
    bad: number;
    /** RSS right before the load, its peak during the load, at its end, and 30 s later. */
    beforeMiB: number;
    peakMiB: number;
    endMiB: number;
    after30sMiB: number;
    /** RSS once a second from the end of the load. */
    afterSamplesMiB: number[];
  };
  start?: {
    /** Spawn → first correct response, with an empty cache directory. */
    firstReadyMs: number;
    /** The same server started again (its cache directory kept). */
    againReadyMs: number;
    /** The first interpreter's boot in the second start, as its boot report says (stages, no waits). */
    againBoot?: BootReport;
    firstBoot?: BootReport;
  };
}

const MiB = 1024 * 1024;
export const MEMORY_LOAD_SECONDS = 15;
export const MEMORY_AFTER_SECONDS = 30;
const LOAD_CONNECTIONS = 32;

export function memoryVariants(pythonAbsent: string | undefined, nativeAbsent: string | undefined): MemoryVariant[] {
  const gunicorn = findExecutable('gunicorn');
  const variants: MemoryVariant[] = [
    { id: 'interpool-py3.14', label: 'interpool, Python 3.14 (Pyodide 314)', engine: 'interpool', python: '3.14', absent: pythonAbsent },
    { id: 'interpool-native', label: 'interpool, Python native (CPython subinterpreters)', engine: 'interpool', python: 'native', absent: pythonAbsent ?? nativeAbsent },
    { id: 'gunicorn-gthread', label: 'gunicorn -k gthread --threads 4 (master + N worker processes)', engine: 'gunicorn', absent: gunicorn ? undefined : 'gunicorn is not installed (npm run loadtest:setup-peers)' },
  ];
  return variants;
}

interface Launched {
  server: ServerProcess;
  boots: BootReport[];
  readyMs: number;
}

function launchSpec(root: string, variant: MemoryVariant, workers: number, port: number, cacheDir: string): LaunchSpec {
  if (variant.engine === 'gunicorn') {
    const app = join(root, 'apps/hello.py');
    return {
      command: findExecutable('gunicorn')!, cwd: root,
      args: ['-k', 'gthread', '-w', String(workers), '--threads', '4', '--bind', `127.0.0.1:${port}`, '--chdir', dirname(app), '--log-level', 'warning', `${basename(app, '.py')}:application`],
    };
  }
  const spec = interpoolTarget({ root, appFile: 'apps/hello.py', workers, python: variant.python, logLevel: 'info' }).launch(port);
  return { ...spec, env: { ...spec.env, INTERPOOL_CACHE_DIR: cacheDir } };
}

/** Start a server, wait for its first correct answer and for `workers` boot reports (interpool). */
async function launch(root: string, variant: MemoryVariant, workers: number, cacheDir: string): Promise<Launched> {
  const boots: BootReport[] = [];
  const port = await findFreePort();
  const spec = launchSpec(root, variant, workers, port, cacheDir);
  const server = new ServerProcess(variant.label, port, { ...spec, onLine: (line) => { const boot = parseBoot(line); if (boot) boots.push(boot); } });
  try {
    const readyMs = await server.waitUntilReady({ method: 'GET', path: '/', verify: (body) => body === HELLO_BODY }, 180_000);
    const deadline = performance.now() + 180_000;
    if (variant.engine === 'interpool') {
      while (boots.length < workers && performance.now() < deadline && !server.exited) await sleep(100);
      if (boots.length < workers) throw new Error(`${boots.length} of ${workers} interpreters booted\n${server.logTail()}`);
    }
    return { server, boots, readyMs };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** RSS at rest: the median of five readings 400 ms apart, after a second's settling. */
async function restingMiB(server: ServerProcess): Promise<number> {
  await sleep(1000);
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(server.rss() / MiB);
    await sleep(400);
  }
  return round(summarize(readings)!.median);
}

const round = (value: number) => Math.round(value * 10) / 10;

async function measureOne(root: string, variant: MemoryVariant, progress: Progress): Promise<MemoryResult> {
  const result: MemoryResult = { id: variant.id, label: variant.label, status: 'measured' };
  const cacheDir = mkdtempSync(join(tmpdir(), 'interpool-memory-cache-'));
  const idle: Record<string, number> = {};
  try {
    // 1. First start with an empty cache, then the same server again: the second start.
    const first = await launch(root, variant, 1, cacheDir);
    await first.server.stop();
    const again = await launch(root, variant, 1, cacheDir);
    idle['1'] = await restingMiB(again.server);
    await again.server.stop();
    result.start = { firstReadyMs: Math.round(first.readyMs), againReadyMs: Math.round(again.readyMs), firstBoot: first.boots[0], againBoot: again.boots[0] };
    const bootMs = (boot?: BootReport) => (boot ? `${boot.start} ${Math.round(boot.totalMs)} ms` : 'n/a');
    progress.step(`memory · ${variant.label}: first start answered in ${Math.round(first.readyMs)} ms (${bootMs(first.boots[0])}), again in ${Math.round(again.readyMs)} ms (${bootMs(again.boots[0])}); idle with 1: ${idle['1']} MiB`);

    // 2. Four interpreters idle: the cost of each added one.
    const four = await launch(root, variant, 4, cacheDir);
    idle['4'] = await restingMiB(four.server);
    await four.server.stop();

    // 3. Two interpreters: idle, a 15 s hello load, and the 30 s after it.
    const two = await launch(root, variant, 2, cacheDir);
    try {
      idle['2'] = await restingMiB(two.server);
      two.server.startSampling();
      const run = await runLoad(two.server.url, scenarios.hello, { connections: LOAD_CONNECTIONS, duration: MEMORY_LOAD_SECONDS });
      const peak = two.server.stopSampling() / MiB;
      const endMiB = two.server.rss() / MiB;
      const afterSamplesMiB: number[] = [];
      for (let second = 1; second <= MEMORY_AFTER_SECONDS; second++) {
        await sleep(1000);
        afterSamplesMiB.push(round(two.server.rss() / MiB));
      }
      result.load = {
        seconds: MEMORY_LOAD_SECONDS, workers: 2, connections: LOAD_CONNECTIONS,
        requestsPerSec: Math.round(run.requestsPerSec), bad: run.errors + run.non2xx + run.wrongBody,
        beforeMiB: idle['2'], peakMiB: round(peak), endMiB: round(endMiB), after30sMiB: afterSamplesMiB.at(-1)!, afterSamplesMiB,
      };
    } finally {
      await two.server.stop();
    }
    result.idleMiB = idle;
    result.perAddedMiB = round((idle['4'] - idle['1']) / 3);
    progress.step(`memory · ${variant.label}: idle 1/2/4: ${idle['1']}/${idle['2']}/${idle['4']} MiB (+${result.perAddedMiB} each); 15 s load (${result.load!.requestsPerSec} req/s): peak ${result.load!.peakMiB}, end ${result.load!.endMiB}, 30 s later ${result.load!.after30sMiB} MiB`);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  return result;
}

export async function measureMemory(root: string, variants: MemoryVariant[], progress: Progress): Promise<MemoryResult[]> {
  progress.section(`memory and start: hello.py, RSS idle with 1, 2 and 4 interpreters, ${MEMORY_LOAD_SECONDS} s load on 2, ${MEMORY_AFTER_SECONDS} s after; a second start`);
  const results: MemoryResult[] = [];
  for (const variant of variants) {
    if (variant.absent) {
      results.push({ id: variant.id, label: variant.label, status: 'absent', reason: variant.absent });
      progress.note(`${variant.label}: absent — ${variant.absent}`);
      continue;
    }
    try {
      results.push(await measureOne(root, variant, progress));
    } catch (error) {
      results.push({ id: variant.id, label: variant.label, status: 'failed', reason: (error as Error).message.split('\n')[0] });
      progress.note(`${variant.label}: FAILED — ${(error as Error).message.split('\n')[0]}`);
    }
  }
  return results;
}

const cell = (value: number | undefined) => (value === undefined ? '—' : String(Math.round(value)));

/** The report's section: one row per server, then each one's second start. */
export function renderMemorySection(results: MemoryResult[]): string[] {
  const lines = ['## Memory and second start', ''];
  lines.push(`hello.py; the process's RSS with all its threads or worker processes (interpool: one process, one thread per interpreter; gunicorn: the master and its workers), each idle figure the median of five readings once every interpreter booted. Per added = (idle with 4 − idle with 1) / 3. Load: ${LOAD_CONNECTIONS} connections for ${MEMORY_LOAD_SECONDS} s on 2 interpreters (2 gunicorn workers); "30 s after" is ${MEMORY_AFTER_SECONDS} s after the load ended. Second start: the same server started again with its cache directory (--cache-dir) kept, after a first start with an empty one.`, '');
  lines.push('| server | idle, 1 MiB | idle, 2 MiB | idle, 4 MiB | per added MiB | under load: peak MiB (req/s) | end of load MiB | 30 s after MiB | first start: answers in ms | second start: answers in ms | second start: first interpreter ms |', '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const result of results) {
    if (result.status !== 'measured') {
      lines.push(`| ${result.label} | ${result.status === 'absent' ? 'absent' : 'FAILED'}: ${result.reason} | | | | | | | | | |`);
      continue;
    }
    const { idleMiB = {}, load, start } = result;
    const again = start?.againBoot;
    lines.push(`| ${result.label} | ${cell(idleMiB['1'])} | ${cell(idleMiB['2'])} | ${cell(idleMiB['4'])} | ${cell(result.perAddedMiB)} | ${cell(load?.peakMiB)} (${cell(load?.requestsPerSec)}${load?.bad ? `, ${load.bad} bad` : ''}) | ${cell(load?.endMiB)} | ${cell(load?.after30sMiB)} | ${cell(start?.firstReadyMs)} | ${cell(start?.againReadyMs)} | ${again ? cell(again.totalMs) : '—'} |`);
  }
  lines.push('');
  for (const result of results.filter((r) => r.start?.againBoot)) {
    const stages = (boot: BootReport) => boot.stages.map((stage) => `${stage.name} ${Math.round(stage.ms)} ms`).join(' · ');
    if (result.start!.firstBoot) lines.push(`- ${result.label}, first start: ${stages(result.start!.firstBoot)}`);
    lines.push(`- ${result.label}, second start: ${stages(result.start!.againBoot!)}`);
  }
  return [...lines, ''];
}
