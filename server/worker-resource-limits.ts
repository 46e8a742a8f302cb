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

export function workerResourceLimits(config: AppConfig): WorkerResourceLimits | undefined {
  const limits: WorkerResourceLimits = {};
  // A hard ceiling for a leak within one request; the soft limit is checked after each.
  if (config.kind === 'javascript' && config.memoryLimit > 0) limits.maxOldGenerationSizeMb = config.memoryLimit * 2;
  if (config.kind === 'python' && config.settings.python !== 'native') limits.maxYoungGenerationSizeMb = PYODIDE_YOUNG_GENERATION_MB;
  return Object.keys(limits).length > 0 ? limits : undefined;
}
