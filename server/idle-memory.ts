/**
 * The main thread gives its spare heap back once it goes idle. Under load V8 grows the
 * main thread's young generation (two semi-spaces) to 16-128 MB and keeps it committed
 * and resident when the load ends: V8's own memory reducer did not shrink it within 30 s
 * of an idle server. A memory-reducing collection (V8's "last resort": full collections
 * until nothing more is freed, the young generation back to 1 MB) does; it takes a few
 * tens of ms for this thread's ~20 MB heap, so it runs only in a second in which the
 * event loop was nearly idle, and once per idle spell.
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/** How often the event loop's utilization is read. */
const CHECK_MS = 1000;
/** Below this share of a second spent running, the thread counts as idle. */
const IDLE_UTILIZATION = 0.02;
/** Worth a collection: a young generation grown past this, or this much free in the old one. */
const SPARE_YOUNG_BYTES = 4 * 1024 * 1024;
const SPARE_OLD_BYTES = 8 * 1024 * 1024;

type V8Gc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** Start watching; returns a function that stops. The timer never keeps the process alive. */
export function reduceMemoryWhenIdle(): () => void {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  // Once per idle spell: a busy second in between arms it again.
  let armed = true;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, last);
    last = now;
    if (utilization >= IDLE_UTILIZATION) {
      armed = true;
      return;
    }
    if (!armed || !hasSpareHeap()) return;
    armed = false;
    collectMemoryReducing();
    last = performance.eventLoopUtilization(); // the collection itself is not activity
  }, CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

function hasSpareHeap(): boolean {
  const spaces = getHeapSpaceStatistics();
  const young = spaces.find((space) => space.space_name === 'new_space');
  const old = spaces.find((space) => space.space_name === 'old_space');
  return (young !== undefined && young.space_size >= SPARE_YOUNG_BYTES)
    || (old !== undefined && old.space_size - old.space_used_size >= SPARE_OLD_BYTES);
}

/**
 * V8 offers no call for it but the flag-gated gc(): exposed on a context of its own, then
 * the flag is put back so that nothing else sees it (as the Python workers do after boot).
 */
function collectMemoryReducing(): void {
  const exposed = (globalThis as { gc?: V8Gc }).gc;
  if (exposed) return exposed({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('typeof gc === "function" ? gc : undefined') as V8Gc | undefined;
  setFlagsFromString('--no-expose-gc');
  gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
