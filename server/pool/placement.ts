/**
 * One hand-out of a request to a generation of an app's interpreters (worker-pool.ts):
 * what was posted, to which worker, for whom, and how the request's ticket acts on it
 * while it runs (request-ticket.ts Run).
 */
import { WITHDRAWN, type StreamMessage, type TaskResult, type WireRequest } from '../../runtime/protocol.ts';
import { PiscinaAdapter, type PlacedTask } from './piscina-adapter.ts';
import type { Run } from './request-ticket.ts';
import type { WorkerHandle } from './worker-handle.ts';

/** Whoever a placement's request belongs to (the request's ticket): the pool reports to it. */
export interface PlacementOwner {
  /** Admission order: taken-back requests go back to the queue in it. */
  readonly order: number;
  onStream(message: StreamMessage, workerId: number): void;
  /** The request ran: its result. */
  onResult(result: TaskResult): void;
  /** Its worker died running it (or the pool was destroyed before it ran). */
  onFailed(error: unknown): void;
}

/** What a placement asks of its pool (WorkerPool). */
export interface PlacementPool<O extends PlacementOwner> {
  withdraw(placement: Placement<O>): boolean;
  runningOn(placement: Placement<O>): WorkerHandle | undefined;
  terminateRun(placement: Placement<O>): void;
  release(placement: Placement<O>): void;
}

/**
 * One hand-out of a request to this generation. A class on purpose, not an object
 * literal with closures: V8 gives each literal whose methods are fresh closures a hidden
 * class (map) of its own, maps live in the old generation, and through those closures
 * every such map kept its whole request alive across young-generation GCs until the
 * next full one (docs/loadtest.md, "The promoted garbage").
 */
export class Placement<O extends PlacementOwner = PlacementOwner> implements PlacedTask, Run {
  /** What is posted; `claim` is its claim cell once it is offered to a busy worker. */
  readonly envelope: WireRequest;
  /** The body's buffer, transferred unless the request is offered (it may be sent again). */
  readonly transferList: ArrayBuffer[];
  /** Undefined once taken back: whatever piscina reports for it afterwards is no one's. */
  owner: O | undefined;
  /** The worker piscina posted it to; undefined while it waits in piscina's queue. */
  handle: WorkerHandle | undefined;
  /** Its worker retires once this response is complete. */
  retiresWorker = false;
  /** Posted on its worker's port, not through piscina: its answer comes back there. */
  posted = false;
  readonly #pool: PlacementPool<O>;

  /** No owner: a task no one waits for (worker-pool.ts, a nudge to piscina). */
  constructor(pool: PlacementPool<O>, envelope: WireRequest, owner: O | undefined) {
    this.#pool = pool;
    this.envelope = PiscinaAdapter.freshTask(envelope);
    this.transferList = this.envelope.body ? [this.envelope.body.buffer as ArrayBuffer] : [];
    this.owner = owner;
    this.handle = undefined;
  }

  get offered(): boolean {
    return this.envelope.claim !== undefined && this.envelope.claim !== WITHDRAWN;
  }

  withdraw(): boolean {
    return this.#pool.withdraw(this);
  }

  cancel(): void {
    this.#pool.runningOn(this)?.cancel(this.envelope.id);
  }

  interrupt(): void {
    this.#pool.runningOn(this)?.interrupt(this.envelope.id);
  }

  setPaused(paused: boolean): void {
    this.#pool.runningOn(this)?.setPaused(this.envelope.id, paused);
  }

  terminate(): void {
    this.#pool.terminateRun(this);
  }

  release(): void {
    this.#pool.release(this);
  }
}
