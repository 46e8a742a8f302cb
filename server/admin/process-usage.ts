/**
 * This server process as a whole: its memory (RSS counts every interpreter's heap,
 * WebAssembly memories included; the V8 heap figures are the main thread's only) and
 * its CPU, as a percentage of one core (all threads, so several busy interpreters
 * read above 100).
 */

export interface ProcessUsage {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Memory outside the main thread's V8 heap that it accounts for (buffers). */
  externalBytes: number;
  /** CPU time over wall time, in percent of one core, over the last `cpuWindowSeconds`. */
  cpuPercent: number;
  cpuWindowSeconds: number;
}

interface CpuSample {
  at: number;
  /** User + system CPU time, in microseconds. */
  micros: number;
}

/** Shorter intervals than this read too noisy to show: the previous reading stands. */
const MIN_WINDOW_MS = 1000;

/**
 * CPU percent from the difference between two samples at least a second apart, so that
 * two dashboards polling at once do not halve each other's window. Until one second has
 * passed, the average since the process started.
 */
export class CpuMeter {
  readonly #read: () => CpuSample;
  #base: CpuSample;
  #reading: { percent: number; windowSeconds: number };

  constructor(read: () => CpuSample = readCpu, startedAt = Date.now() - process.uptime() * 1000) {
    this.#read = read;
    this.#base = read();
    const elapsed = Math.max(1, this.#base.at - startedAt);
    this.#reading = { percent: percentOf(this.#base.micros, elapsed), windowSeconds: Math.round(elapsed / 100) / 10 };
  }

  read(): { percent: number; windowSeconds: number } {
    const sample = this.#read();
    const elapsed = sample.at - this.#base.at;
    if (elapsed >= MIN_WINDOW_MS) {
      this.#reading = { percent: percentOf(sample.micros - this.#base.micros, elapsed), windowSeconds: Math.round(elapsed / 100) / 10 };
      this.#base = sample;
    }
    return this.#reading;
  }
}

function percentOf(micros: number, elapsedMs: number): number {
  return Math.round((micros / 1000 / elapsedMs) * 1000) / 10;
}

function readCpu(): CpuSample {
  const { user, system } = process.cpuUsage();
  return { at: Date.now(), micros: user + system };
}

const cpu = new CpuMeter();

export function readProcessUsage(): ProcessUsage {
  const memory = process.memoryUsage();
  const { percent, windowSeconds } = cpu.read();
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    cpuPercent: percent,
    cpuWindowSeconds: windowSeconds,
  };
}
