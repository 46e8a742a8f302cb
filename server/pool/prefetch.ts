/**
 * Prefetch: a request handed to a worker that is still busy waits in one of the
 * worker's claim cells (runtime/protocol.ts ControlSlot.PREFETCH) until one of two
 * threads swaps its id out of the cell — the worker, to run it, or the main thread, to
 * take it back (a worker went idle, its deadline, its client left, its worker goes).
 * Whoever swaps first owns it.
 *
 * The cell is the only record of an offer: whether a request still waits, how many
 * wait, which ones a worker holds. Nothing on the main thread keeps a copy of that
 * state, so nothing can disagree with it. The worker's side of the race is
 * runtime/worker.ts `claimed()`.
 */
import { ControlSlot, MAX_PREFETCH } from '../../runtime/protocol.ts';

/**
 * Put a request in a free claim cell of this worker's control block; the cell's index
 * (RequestEnvelope.claim), or undefined when every cell is taken.
 */
export function offer(control: Int32Array, id: number): number | undefined {
  for (let claim = 0; claim < MAX_PREFETCH; claim++) {
    if (Atomics.compareExchange(control, ControlSlot.PREFETCH + claim, 0, id) === 0) return claim;
  }
  return undefined;
}

/**
 * Take an offered request back: true when the main thread won the swap (the request
 * never ran there and never will), false when the worker claimed it first (it runs there).
 */
export function takeBack(control: Int32Array, id: number, claim: number): boolean {
  return Atomics.compareExchange(control, ControlSlot.PREFETCH + claim, id, 0) === id;
}

/** The ids still waiting in this worker's cells (offered, not claimed, not taken back). */
export function waitingIds(control: Int32Array): number[] {
  const ids: number[] = [];
  for (let claim = 0; claim < MAX_PREFETCH; claim++) {
    const id = Atomics.load(control, ControlSlot.PREFETCH + claim);
    if (id !== 0) ids.push(id);
  }
  return ids;
}

/** How many requests wait in this worker's cells. */
export function countWaiting(control: Int32Array): number {
  let waiting = 0;
  for (let claim = 0; claim < MAX_PREFETCH; claim++) if (Atomics.load(control, ControlSlot.PREFETCH + claim) !== 0) waiting++;
  return waiting;
}
