/**
 * What Linux's /proc says about a process tree and the whole machine: resident memory,
 * CPU time. Servers fork (gunicorn, uWSGI, Apache) and interpool runs threads, so every
 * figure is for a process and all its descendants.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Clock ticks per second of /proc/<pid>/stat and /proc/stat (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: fields resume after ')'.
    // The returned array starts at field 3 (state).
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The pid and every descendant of `rootPid` alive right now. */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (!fields) continue;
    const ppid = Number(fields[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const tree: number[] = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    tree.push(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  return tree;
}

function readRss(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of a process and its descendants, in bytes. */
export function readTreeRss(rootPid: number): number {
  return processTree(rootPid).reduce((sum, pid) => sum + readRss(pid), 0);
}

/**
 * A process tree's RSS at rest, in MiB: under load it swings by the size of the
 * interpreters booting at that moment, so it is read after `settleMs` of quiet, as the
 * median of five readings `everyMs` apart.
 */
export async function readRestingRssMiB(rootPid: number, settleMs: number, everyMs: number): Promise<number> {
  await sleep(settleMs);
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(Math.round((readTreeRss(rootPid) / 1024 / 1024) * 10) / 10);
    await sleep(everyMs);
  }
  return readings.sort((a, b) => a - b)[2]!;
}

/** CPU seconds (user + system) used so far by a process and its live descendants. */
export function readTreeCpuSeconds(rootPid: number): number {
  let ticks = 0;
  for (const pid of processTree(rootPid)) {
    const fields = statFields(pid);
    // utime and stime are fields 14 and 15; the array starts at field 3.
    if (fields) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / TICKS_PER_SECOND;
}

/** CPU seconds the whole machine has spent busy and in total, all CPUs together. */
export function readMachineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { busy: busy / TICKS_PER_SECOND, total: (busy + idle! + iowait!) / TICKS_PER_SECOND };
}

export interface CpuShare {
  /** CPUs' worth of time (1.0 = one CPU fully busy) over the measured interval. */
  server: number;
  /** The load generator: this process (autocannon runs in it). */
  loadGenerator: number;
  /** Everything else on the machine: other people's work, the noise. */
  other: number;
}

/** Measure how the machine's CPU time was split while `work` ran. */
export async function measureCpuShare<T>(serverPid: number, work: () => Promise<T>): Promise<{ result: T; cpu: CpuShare }> {
  const machineBefore = readMachineCpuSeconds();
  const oursBefore = readTreeCpuSeconds(process.pid);
  const serverBefore = readTreeCpuSeconds(serverPid);
  const selfBefore = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const self = process.cpuUsage(selfBefore);
  const server = readTreeCpuSeconds(serverPid) - serverBefore;
  const ours = readTreeCpuSeconds(process.pid) - oursBefore;
  const machine = readMachineCpuSeconds().busy - machineBefore.busy;
  const perSecond = (value: number) => (seconds > 0 ? Math.max(0, value) / seconds : 0);
  return {
    result,
    cpu: {
      server: perSecond(server),
      loadGenerator: perSecond((self.user + self.system) / 1e6),
      other: perSecond(machine - ours),
    },
  };
}
