/**
 * A comparison: several servers, one scenario, measured in the same run. Every server is
 * started (one after another), checked, warmed up, then measured round by round — each
 * round runs every server once, in a rotating order — so that the machine's noise falls
 * on all of them alike and the ratios between them are measured, not assembled from
 * separate runs.
 */
import { badCount, runLoad, type LoadShape, type RunResult } from './measure.ts';
import { measureCpuShare, type CpuShare } from './proc.ts';
import type { Progress } from './progress.ts';
import type { Scenario } from './scenarios.ts';
import { ServerProcess, findFreePort } from './server-process.ts';
import { pairwiseRatios, summarize, type Spread } from './stats.ts';
import type { Target, TargetRole } from './targets.ts';

/** Where a comparison goes in the report. */
export type Section = 'issue-2' | 'scenarios' | 'scaling' | 'cpu-benchmark' | 'reload';

/** Signals sent to some servers during each of their measured runs (a reload under load). */
export interface RunEvents {
  signal: NodeJS.Signals;
  /** Seconds after the start of the run. */
  atSec: number[];
  targetIds: string[];
}

export interface Comparison {
  id: string;
  section: Section;
  title: string;
  /** What the comparison is judged by: throughput, or wall time for a fixed number of requests. */
  metric: 'rps' | 'wall';
  scenario: Scenario;
  targets: Target[];
  /** Ratios are given against this target (the first measured one when absent). */
  referenceIds: string[];
  shape: LoadShape;
  /** A target's own load shape, when it differs (the CPU benchmark's sequential run). */
  shapes?: Record<string, LoadShape>;
  runs: number;
  warmupSec: number;
  events?: RunEvents;
}

export type OutcomeStatus = 'measured' | 'absent' | 'failed';

export interface TargetOutcome {
  id: string;
  label: string;
  role: TargetRole;
  appFile?: string;
  status: OutcomeStatus;
  /** Why the target is absent or failed. */
  reason?: string;
  shape?: LoadShape;
  /** Milliseconds from spawn to the first correct response. */
  readyMs?: number;
  runs: RunResult[];
  rps?: Spread;
  wallSec?: Spread;
  p50?: Spread;
  p99?: Spread;
  maxLatencyMs?: Spread;
  longestPauseMs?: Spread;
  /** CPUs' worth of time used by the server, the load generator and everything else. */
  cpu?: { server?: Spread; loadGenerator?: Spread; other?: Spread };
  /** Good responses per CPU-second the server used: robust to a busy machine. */
  perServerCpuSec?: Spread;
  /** Against the comparison's reference, round by round. */
  ratio?: Spread;
  /** perServerCpuSec against the reference's, round by round. */
  efficiencyRatio?: Spread;
  /** The reference for speed-ups (wall time of the reference / this one), round by round. */
  speedup?: Spread;
  totals: { responses: number; good: number; errors: number; timeouts: number; non2xx: number; wrongBody: number };
  statusCodes: Record<string, number>;
  rssIdleMiB?: number;
  rssPeakMiB?: number;
  rssAfterMiB?: number;
  /** Lines the server wrote while it was measured (servers run at warning level). */
  serverLog: { count: number; sample: string[] };
}

export interface ComparisonResult {
  id: string;
  section: Section;
  title: string;
  metric: 'rps' | 'wall';
  scenario: string;
  request: string;
  shape: LoadShape;
  runs: number;
  /** Candidates for the reference, in order of preference. */
  referenceIds: string[];
  /** The reference the ratios are against: the first candidate that was measured. */
  referenceId?: string;
  events?: RunEvents;
  outcomes: TargetOutcome[];
}

const MiB = 1024 * 1024;

/** A run with a pause this long without any response is reported as a stall. */
export const STALL_MS = 1000;

/** Processes that are up right now, so that an interrupted load test leaves none behind. */
export const liveServers = new Set<ServerProcess>();

function emptyOutcome(target: Target, status: OutcomeStatus, reason?: string): TargetOutcome {
  return {
    id: target.id, label: target.label, role: target.role, appFile: target.appFile, status, reason,
    runs: [], totals: { responses: 0, good: 0, errors: 0, timeouts: 0, non2xx: 0, wrongBody: 0 }, statusCodes: {},
    serverLog: { count: 0, sample: [] },
  };
}

async function startTarget(target: Target, scenario: Scenario, progress: Progress): Promise<{ server?: ServerProcess; outcome: TargetOutcome }> {
  if (target.absent) {
    progress.note(`${target.label}: absent — ${target.absent}`);
    return { outcome: emptyOutcome(target, 'absent', target.absent) };
  }
  const port = await findFreePort();
  let server: ServerProcess;
  try {
    server = new ServerProcess(target.label, port, target.launch(port));
  } catch (error) {
    return { outcome: emptyOutcome(target, 'failed', `could not launch: ${(error as Error).message}`) };
  }
  liveServers.add(server);
  try {
    const probe = { method: scenario.method, path: scenario.path, headers: scenario.headers, body: scenario.body, verify: scenario.verifyBody };
    const readyMs = await server.waitUntilReady(probe, target.readyTimeoutSec * 1000);
    progress.note(`${target.label}: ready on :${port} in ${Math.round(readyMs)} ms`);
    const outcome = emptyOutcome(target, 'measured');
    outcome.readyMs = readyMs;
    outcome.rssIdleMiB = server.rss() / MiB;
    return { server, outcome };
  } catch (error) {
    const reason = (error as Error).message;
    progress.note(`${target.label}: FAILED to start — ${reason}`);
    await server.stop();
    liveServers.delete(server);
    return { outcome: emptyOutcome(target, 'failed', reason.split('\n')[0]) };
  }
}

function rotate<T>(items: readonly T[], by: number): T[] {
  if (items.length === 0) return [];
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

function describeCpu(cpu: CpuShare | undefined): string {
  if (!cpu) return '';
  return `; CPUs: server ${cpu.server.toFixed(2)}, load generator ${cpu.loadGenerator.toFixed(2)}, other ${cpu.other.toFixed(2)}${cpu.other > 0.3 ? ' (NOISY)' : ''}`;
}

function describeRun(run: RunResult, shape: LoadShape): string {
  const bad = badCount(run);
  const speed = shape.amount ? `${run.wallSec.toFixed(2)} s for ${shape.amount} requests` : `${Math.round(run.requestsPerSec).toLocaleString('en-US')} req/s`;
  return `${speed}, p50 ${run.p50} ms, p99 ${run.p99} ms${bad ? `, ${bad} BAD (errors ${run.errors}, non-2xx ${run.non2xx}, wrong body ${run.wrongBody})` : ''}${run.longestPauseMs >= STALL_MS ? `, NO RESPONSE FOR ${(run.longestPauseMs / 1000).toFixed(1)} s` : ''}${describeCpu(run.cpu)}`;
}

export async function runComparison(comparison: Comparison, progress: Progress): Promise<ComparisonResult> {
  const { scenario, runs } = comparison;
  progress.section(comparison.title);
  const started: { target: Target; server?: ServerProcess; outcome: TargetOutcome }[] = [];
  for (const target of comparison.targets) started.push({ target, ...(await startTarget(target, scenario, progress)) });
  const live = started.filter((entry) => entry.server);
  const shapeOf = (target: Target) => comparison.shapes?.[target.id] ?? comparison.shape;

  try {
    if (comparison.warmupSec > 0) {
      for (const { target, server } of live) {
        const shape = shapeOf(target);
        await runLoad(server!.url, scenario, shape.amount ? { ...shape, amount: Math.max(shape.connections, Math.ceil(shape.amount / 4)) } : { ...shape, duration: comparison.warmupSec });
      }
    }
    for (const { server } of live) {
      server!.resetLog();
      server!.startSampling();
    }
    for (let round = 0; round < runs; round++) {
      for (const { target, server, outcome } of rotate(live, round)) {
        if (outcome.status !== 'measured') continue;
        if (server!.exited) {
          outcome.status = 'failed';
          outcome.reason = 'the server exited during the measurement';
          progress.note(`${target.label}: exited during the measurement\n${server!.logTail()}`);
          continue;
        }
        const shape = shapeOf(target);
        const events = comparison.events?.targetIds.includes(target.id) ? comparison.events : undefined;
        const timers = (events?.atSec ?? []).map((sec) => setTimeout(() => server!.signal(events!.signal), sec * 1000));
        const where = `${scenario.name} · ${target.label} · run ${round + 1}/${runs}`;
        const onProgress = (good: number, elapsedSec: number) => progress.live(
          `${where} · ${Math.round(elapsedSec)}/${shape.duration} s · ${Math.round(good / Math.max(elapsedSec, 0.001)).toLocaleString('en-US')} req/s so far`);
        progress.live(`${where} · starting`);
        const { result: run, cpu } = await measureCpuShare(server!.pid!, () => runLoad(server!.url, scenario, shape, onProgress));
        timers.forEach(clearTimeout);
        run.cpu = cpu;
        outcome.runs.push(run);
        progress.step(`${scenario.name} · ${target.label} · run ${round + 1}/${runs}: ${describeRun(run, shape)}`);
      }
    }
    for (const { server, outcome } of live) {
      outcome.rssPeakMiB = server!.stopSampling() / MiB;
      outcome.rssAfterMiB = server!.rss() / MiB;
      outcome.serverLog = server!.notableLog();
    }
  } finally {
    for (const { server } of live) {
      await server!.stop();
      liveServers.delete(server!);
    }
  }

  return summarizeComparison({
    id: comparison.id, section: comparison.section, title: comparison.title, metric: comparison.metric, scenario: scenario.name,
    request: `${scenario.method} ${scenario.path}${scenario.body ? ` (${scenario.body.length} B body)` : ''}`,
    shape: comparison.shape, runs, referenceIds: comparison.referenceIds, events: comparison.events,
    outcomes: started.map(({ target, outcome }) => ({ ...outcome, shape: shapeOf(target) })),
  });
}

/**
 * Every summary of a comparison, from its raw runs: medians, CPU shares and the ratios
 * against the reference, round by round. Also used to re-render an old JSON file.
 */
export function summarizeComparison(result: ComparisonResult): ComparisonResult {
  const outcomes = result.outcomes.map((outcome) => summarizeOutcome(outcome));
  const referenceIds = result.referenceIds ?? (result.referenceId ? [result.referenceId] : []);
  const reference = referenceIds.map((id) => outcomes.find((outcome) => outcome.id === id && outcome.status === 'measured')).find(Boolean);
  if (reference) {
    for (const outcome of outcomes) {
      if (outcome.status !== 'measured') continue;
      outcome.ratio = summarize(pairwiseRatios(outcome.runs.map((run) => run.requestsPerSec), reference.runs.map((run) => run.requestsPerSec)));
      outcome.efficiencyRatio = summarize(pairwiseRatios(efficiencies(outcome.runs), efficiencies(reference.runs)));
      outcome.speedup = summarize(pairwiseRatios(reference.runs.map((run) => run.wallSec), outcome.runs.map((run) => run.wallSec)));
    }
  }
  return { ...result, referenceIds, referenceId: reference?.id, outcomes };
}

function efficiencies(runs: readonly RunResult[]): number[] {
  return runs.map((run) => (run.cpu && run.cpu.server > 0 ? run.requestsPerSec / run.cpu.server : NaN));
}

function summarizeOutcome(outcome: TargetOutcome): TargetOutcome {
  if (outcome.status !== 'measured' || outcome.runs.length === 0) return outcome;
  const { runs } = outcome;
  const totals = { responses: 0, good: 0, errors: 0, timeouts: 0, non2xx: 0, wrongBody: 0 };
  const statusCodes: Record<string, number> = {};
  for (const run of runs) {
    totals.responses += run.responses;
    totals.good += run.good;
    totals.errors += run.errors;
    totals.timeouts += run.timeouts;
    totals.non2xx += run.non2xx;
    totals.wrongBody += run.wrongBody;
    for (const [code, count] of Object.entries(run.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + count;
  }
  return {
    ...outcome, totals, statusCodes,
    rps: summarize(runs.map((run) => run.requestsPerSec)),
    wallSec: summarize(runs.map((run) => run.wallSec)),
    p50: summarize(runs.map((run) => run.p50)),
    p99: summarize(runs.map((run) => run.p99)),
    perServerCpuSec: summarize(efficiencies(runs)),
    maxLatencyMs: summarize(runs.map((run) => run.maxLatencyMs ?? NaN)),
    longestPauseMs: summarize(runs.map((run) => run.longestPauseMs)),
    cpu: {
      server: summarize(runs.map((run) => run.cpu?.server ?? NaN)),
      loadGenerator: summarize(runs.map((run) => run.cpu?.loadGenerator ?? NaN)),
      other: summarize(runs.map((run) => run.cpu?.other ?? NaN)),
    },
  };
}
