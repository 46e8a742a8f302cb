/**
 * Interpreter start: how long one interpreter takes to boot, cold and from a snapshot,
 * stage by stage, as interpool reports it in its "interpreter booted" log lines; how
 * long the whole server takes to answer its first request; and the memory one more
 * interpreter costs (idle RSS with 2 workers minus idle RSS with 1).
 */
import type { Progress } from './progress.ts';
import { ServerProcess, findFreePort } from './server-process.ts';
import { summarize, type Spread } from './stats.ts';
import { interpoolTarget } from './targets.ts';
import { HELLO_BODY } from './scenarios.ts';

export interface BootVariant {
  label: string;
  appFile: string;
  python?: string;
  /** Why it cannot be measured in this build. */
  absent?: string;
}

interface BootStage {
  name: string;
  ms: number;
}

export interface BootReport {
  worker: number;
  /** 'snapshot' when the interpreter was restored from a snapshot, else 'cold'. */
  start: 'cold' | 'snapshot';
  /** The interpreter's own boot: every stage but waiting for another one's snapshot. */
  totalMs: number;
  /** Time spent waiting for the snapshot another interpreter was making. */
  waitMs?: number;
  stages: BootStage[];
}

export interface BootResult {
  label: string;
  appFile: string;
  status: 'measured' | 'absent' | 'failed';
  reason?: string;
  /** One entry per server start. */
  spawns: { readyMs: number; rssIdleMiB: number; boots: BootReport[] }[];
  /** Idle RSS of each start with 1 worker. */
  rssOneWorkerMiBRuns?: number[];
  rssOneWorkerMiB?: number;
  readyMs?: Spread;
  coldMs?: Spread;
  snapshotMs?: Spread;
  /** Median milliseconds of each stage, cold and from a snapshot. */
  coldStages?: Record<string, number>;
  snapshotStages?: Record<string, number>;
  /** Idle RSS with 2 workers minus idle RSS with 1 worker (median of the starts). */
  rssPerInterpreterMiB?: number;
}

const MiB = 1024 * 1024;
const BOOT_LINE = 'interpreter booted';

export function parseBoot(line: string): BootReport | undefined {
  let entry: { msg?: string; worker?: number; stages?: BootStage[] };
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {
    return undefined;
  }
  if (entry.msg !== BOOT_LINE || !Array.isArray(entry.stages)) return undefined;
  const stages = entry.stages.filter((stage) => typeof stage?.name === 'string' && typeof stage.ms === 'number');
  const waiting = (stage: BootStage) => stage.name.startsWith('wait');
  return {
    worker: Number(entry.worker ?? 0),
    // 'restore snapshot', 'restore runtime snapshot', 'restore runtime from disk snapshot'.
    start: stages.some((stage) => stage.name.startsWith('restore')) ? 'snapshot' : 'cold',
    totalMs: stages.filter((stage) => !waiting(stage)).reduce((sum, stage) => sum + stage.ms, 0),
    waitMs: stages.filter(waiting).reduce((sum, stage) => sum + stage.ms, 0),
    stages,
  };
}

/** Start the server once; returns when it answered and `workers` boot reports came in. */
async function startOnce(root: string, variant: BootVariant, workers: number) {
  const boots: BootReport[] = [];
  const target = interpoolTarget({ root, appFile: variant.appFile, workers, python: variant.python, logLevel: 'info' });
  const port = await findFreePort();
  const spec = target.launch(port);
  const server = new ServerProcess(target.label, port, { ...spec, onLine: (line) => { const boot = parseBoot(line); if (boot) boots.push(boot); } });
  try {
    const readyMs = await server.waitUntilReady({ method: 'GET', path: '/', verify: (body) => body === HELLO_BODY }, target.readyTimeoutSec * 1000);
    const deadline = performance.now() + target.readyTimeoutSec * 1000;
    while (boots.length < workers && performance.now() < deadline && !server.exited) await new Promise((resolve) => setTimeout(resolve, 100));
    // Let the pool settle before reading its memory.
    await new Promise((resolve) => setTimeout(resolve, 500));
    return { readyMs, rssIdleMiB: server.rss() / MiB, boots };
  } finally {
    await server.stop();
  }
}

function medianStages(boots: BootReport[]): Record<string, number> | undefined {
  if (boots.length === 0) return undefined;
  const names = [...new Set(boots.flatMap((boot) => boot.stages.map((stage) => stage.name)))];
  return Object.fromEntries(names.map((name) => [name, summarize(boots.flatMap((boot) => boot.stages.filter((s) => s.name === name).map((s) => s.ms)))?.median ?? 0]));
}

/** The summaries of a boot result, from its raw starts (also used by --render). */
export function summarizeBoot(result: BootResult): BootResult {
  if (result.status !== 'measured') return result;
  const boots = result.spawns.flatMap((spawn) => spawn.boots.map((boot) => parseBootStages(boot)));
  const cold = boots.filter((boot) => boot.start === 'cold');
  const snapshot = boots.filter((boot) => boot.start === 'snapshot');
  const oneWorker = result.rssOneWorkerMiBRuns ?? [];
  return {
    ...result,
    readyMs: summarize(result.spawns.map((spawn) => spawn.readyMs)),
    coldMs: summarize(cold.map((boot) => boot.totalMs)),
    snapshotMs: summarize(snapshot.map((boot) => boot.totalMs)),
    coldStages: medianStages(cold),
    snapshotStages: medianStages(snapshot),
    rssOneWorkerMiB: summarize(oneWorker)?.median,
    rssPerInterpreterMiB: summarize(result.spawns.map((spawn, i) => spawn.rssIdleMiB - (oneWorker[i] ?? NaN)))?.median,
  };
}

/** Recompute a boot's totals from its stages (results written before waits were split out). */
function parseBootStages(boot: BootReport): BootReport {
  return parseBoot(JSON.stringify({ msg: BOOT_LINE, worker: boot.worker, stages: boot.stages })) ?? boot;
}

export async function measureBoots(root: string, variants: BootVariant[], starts: number, progress: Progress): Promise<BootResult[]> {
  progress.section(`interpreter start: ${starts} server starts per app, 2 workers`);
  const results: BootResult[] = [];
  for (const variant of variants) {
    const result: BootResult = { label: variant.label, appFile: variant.appFile, status: 'measured', spawns: [] };
    results.push(result);
    if (variant.absent) {
      Object.assign(result, { status: 'absent', reason: variant.absent });
      progress.note(`${variant.label}: absent — ${variant.absent}`);
      continue;
    }
    try {
      const oneWorker: number[] = [];
      for (let i = 0; i < starts; i++) {
        const spawn = await startOnce(root, variant, 2);
        result.spawns.push(spawn);
        oneWorker.push((await startOnce(root, variant, 1)).rssIdleMiB);
        const boots = spawn.boots.map((boot) => `${boot.start} ${Math.round(boot.totalMs)} ms`).join(', ');
        progress.step(`boot · ${variant.label} · start ${i + 1}/${starts}: answered in ${Math.round(spawn.readyMs)} ms; interpreters: ${boots || 'no boot report'}; RSS ${Math.round(spawn.rssIdleMiB)} MiB (1 worker: ${Math.round(oneWorker.at(-1)!)} MiB)`);
      }
      result.rssOneWorkerMiBRuns = oneWorker;
      Object.assign(result, summarizeBoot(result));
    } catch (error) {
      Object.assign(result, { status: 'failed', reason: (error as Error).message.split('\n')[0] });
      progress.note(`${variant.label}: FAILED — ${result.reason}`);
    }
  }
  return results;
}
