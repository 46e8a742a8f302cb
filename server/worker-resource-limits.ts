/**
 * V8's limits for an app's worker threads (node:worker_threads resourceLimits), which
 * only a thread's creation can set.
 */
import type { AppConfig } from './config.ts';

export interface WorkerResourceLimits {
  maxOldGenerationSizeMb?: number;
  maxYoungGenerationSizeMb?: number;
}

/**
 * A Pyodide worker's young generation, in MB (V8 splits it in three: two semi-spaces
 * and the young large objects). Left to V8 it grew under a hello load to 64-128 MB of
 * committed semi-spaces per interpreter (V8's ceiling for a machine of this memory),
 * given back only once the worker had been idle for a while. The main thread keeps
 * V8's default: a small young generation there cost a third of the throughput
 * (docs/python.md), where a worker's JavaScript per request is a few objects.
 */
const PYODIDE_YOUNG_GENERATION_MB = 12;

/**
 * A Pyodide worker's old generation ceiling, in MB. Python's objects live in the wasm
 * memory (outside V8's heap); the JavaScript heap holds Pyodide's glue, ~20 MB live. V8
 * lets an old generation grow between full collections by a factor it derives from the
 * ceiling: up to 4x with V8's default (2-4 GB here), ~1.5x at 512 MB. Under a hello load
 * each worker's old generation swung between 19 MB live and 34-45 MB committed; with this
 * ceiling, 2 interpreters peaked at 270-273 MiB against 323-366 MiB, throughput within
 * the rounds' noise (docs/python.md). 256 MB held the same peak; 128 MB cost a third of
 * the throughput in collections.
 */
const PYODIDE_OLD_GENERATION_MB = 512;

export function workerResourceLimits(config: AppConfig): WorkerResourceLimits | undefined {
  const limits: WorkerResourceLimits = {};
  // A hard ceiling for a leak within one request; the soft limit is checked after each.
  if (config.kind === 'javascript' && config.memoryLimit > 0) limits.maxOldGenerationSizeMb = config.memoryLimit * 2;
  if (config.kind === 'python' && config.settings.python !== 'native') {
    limits.maxYoungGenerationSizeMb = PYODIDE_YOUNG_GENERATION_MB;
    limits.maxOldGenerationSizeMb = PYODIDE_OLD_GENERATION_MB;
  }
  return Object.keys(limits).length > 0 ? limits : undefined;
}
