/**
 * A worker's side of the control block, step for step as runtime/worker.ts does it, over
 * a real Int32Array on a real SharedArrayBuffer: the main-thread code under test swaps
 * the same cells with the same Atomics a worker thread would. Each step is a method the
 * test calls, so a race is ordered by the test, not by a clock.
 */
import { CONTROL_SLOTS, ControlSlot, NO_REQUEST, RetireReason } from '../../../runtime/protocol.ts';

export class FakeWorker {
  readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT));

  /** runtime/worker.ts claimed(): a retiring worker declines; else whoever swaps the cell first owns the request. */
  claim(id: number, claim: number): boolean {
    if (Atomics.load(this.control, ControlSlot.RETIRING) !== RetireReason.NONE) return false;
    Atomics.store(this.control, ControlSlot.REQUEST_ID, id);
    if (Atomics.compareExchange(this.control, ControlSlot.PREFETCH + claim, id, 0) === id) return true;
    Atomics.store(this.control, ControlSlot.REQUEST_ID, NO_REQUEST);
    return false;
  }

  /** A request handed to it while idle starts at once (runtime/worker.ts handleRequest). */
  start(id: number): void {
    Atomics.store(this.control, ControlSlot.REQUEST_ID, id);
  }

  /** The request is done; `retiring` is set before its result is posted, as the worker does. */
  finish(retiring: number = RetireReason.NONE): void {
    Atomics.store(this.control, ControlSlot.RETIRING, retiring);
    Atomics.store(this.control, ControlSlot.REQUEST_ID, NO_REQUEST);
  }

  get requestId(): number {
    return Atomics.load(this.control, ControlSlot.REQUEST_ID);
  }

  cell(claim: number): number {
    return Atomics.load(this.control, ControlSlot.PREFETCH + claim);
  }
}
