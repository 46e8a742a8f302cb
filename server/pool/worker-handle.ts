/**
 * One worker thread as the main thread knows it: its stream port, its shared control
 * block (runtime/protocol.ts ControlSlot), its boot report, and why it is going away.
 * Everything the main thread tells a running worker goes through here, without a
 * message round trip: cancel, interrupt, pause and resume. (Its claim cells, where
 * requests wait their turn in it, are prefetch.ts's.)
 */
import type { MessagePort } from 'node:worker_threads';
import { ControlSlot, RetireReason, WorkerState, type BootReport, type PortRequests, type WorkerHello } from '../../runtime/protocol.ts';

export const EXIT_REASONS = ['recycled', 'memory', 'idle', 'timeout', 'crashed', 'reload', 'shutdown', 'boot-failed', 'stuck'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

/** The value Pyodide's interrupt buffer takes for SIGINT (raises KeyboardInterrupt). */
const SIGINT = 2;

const RETIRE_REASONS: Record<number, ExitReason> = {
  [RetireReason.RECYCLED]: 'recycled',
  [RetireReason.MEMORY]: 'memory',
  [RetireReason.BROKEN]: 'crashed',
};

/** One worker as the dashboard and the stats see it. */
export interface WorkerView {
  workerId: number;
  generation: number;
  /** stuck: terminated at its timeout, its thread blocked in C code: out of the pool, still alive. */
  state: 'booting' | 'idle' | 'busy' | 'draining' | 'failed' | 'stuck';
  requestId: number;
  served: number;
  memoryBytes: number;
  startedAt: number;
  boot: BootReport | undefined;
}

export class WorkerHandle {
  readonly workerId: number;
  readonly control: Int32Array;
  readonly port: MessagePort;
  readonly startedAt = Date.now();
  /** The worker reported its boot itself (its module then finished loading, and piscina takes it as ready). */
  reported = false;
  boot: BootReport | undefined;
  /** Set when the server decides this worker goes (retire, timeout, back-off, close). */
  exitReason: ExitReason | undefined;
  /** Offers made in this turn of the event loop, posted on the port together at its end (worker-pool.ts). */
  readonly outbox: PortRequests = [];

  constructor(hello: WorkerHello) {
    this.workerId = hello.workerId;
    this.control = new Int32Array(hello.control);
    this.port = hello.streamPort as MessagePort;
  }

  /** The app failed to boot in this worker. */
  get failed(): boolean {
    return this.boot?.error !== undefined;
  }

  get requestId(): number {
    return Atomics.load(this.control, ControlSlot.REQUEST_ID);
  }

  /** The id of the last request the worker started (ControlSlot.LAST_STARTED), 0 before its first. */
  get lastStarted(): number {
    return Atomics.load(this.control, ControlSlot.LAST_STARTED);
  }

  get served(): number {
    return Atomics.load(this.control, ControlSlot.REQUESTS_SERVED);
  }

  /** Why the worker asked to be replaced after its last response, if it did. */
  get retireReason(): ExitReason | undefined {
    return RETIRE_REASONS[Atomics.load(this.control, ControlSlot.RETIRING)];
  }

  /** May take a new request: booted fine (or still booting), not going away. */
  get accepts(): boolean {
    return !this.failed && !this.exitReason && this.retireReason === undefined;
  }

  /** Ask the worker to stop this request's iteration and call close(). */
  cancel(id: number): void {
    Atomics.store(this.control, ControlSlot.CANCEL, id);
    // A worker held back by flow control must wake up to see the cancel.
    Atomics.notify(this.control, ControlSlot.PAUSED);
  }

  /** Raise KeyboardInterrupt in the interpreter (Python), and cancel the request. */
  interrupt(id: number): void {
    Atomics.store(this.control, ControlSlot.INTERRUPT, SIGINT);
    this.cancel(id);
  }

  /** Make a native interpreter that still runs Python unwind: it is about to be terminated (ControlSlot.UNWIND). */
  unwind(): void {
    Atomics.store(this.control, ControlSlot.UNWIND, 1);
  }

  clearUnwind(): void {
    Atomics.store(this.control, ControlSlot.UNWIND, 0);
  }

  /** Raise KeyboardInterrupt in the interpreter (Python) while it imports its app: --boot-timeout. */
  interruptBoot(): void {
    Atomics.store(this.control, ControlSlot.INTERRUPT, SIGINT);
  }

  /** Flow control: hold back the worker producing this request's body, or let it go on. */
  setPaused(id: number, paused: boolean): void {
    if (paused) {
      Atomics.store(this.control, ControlSlot.PAUSED, id);
    } else {
      Atomics.store(this.control, ControlSlot.PAUSED, 0);
      Atomics.notify(this.control, ControlSlot.PAUSED);
    }
  }

  view(generation: number, closing: boolean): WorkerView {
    return {
      workerId: this.workerId,
      generation,
      state: this.#state(closing),
      requestId: this.requestId,
      served: this.served,
      memoryBytes: Atomics.load(this.control, ControlSlot.MEMORY_KIB) * 1024,
      startedAt: this.startedAt,
      boot: this.boot,
    };
  }

  #state(closing: boolean): WorkerView['state'] {
    if (this.exitReason === 'stuck') return 'stuck';
    if (this.failed) return 'failed';
    if (this.exitReason || closing) return 'draining';
    switch (Atomics.load(this.control, ControlSlot.STATE)) {
      case WorkerState.BOOTING: return 'booting';
      case WorkerState.BUSY: return 'busy';
      default: return this.boot ? 'idle' : 'booting';
    }
  }
}
