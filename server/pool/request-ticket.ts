/**
 * One request from admission to its result, as the scheduler sees it: a state machine
 * with one state at a time and one timer.
 *
 *   queued ──start──▶ offered ──claimed by its worker──▶ running ──result──▶ settled
 *     │  ▲             │  (waits in a busy worker)        ▲                   ▲
 *     │  └─taken back──┘                                   │                   │
 *     │  └──start (an idle worker)─────────────────────────┘                   │
 *     └──── #takeOut(error): dequeued or withdrawn before it ran ──────────────┘
 *
 * - queued: in the app's admission queue (or held by the group between two hand-outs).
 * - offered: handed to a busy worker, waiting its turn in a claim cell (prefetch.ts);
 *   it counts as queued, and can still be taken back.
 * - running: handed to a worker that runs it now (or to piscina's queue while workers
 *   boot, from where the pool can still withdraw it).
 * - settled: over; whatever the pool reports for it afterwards is not for this ticket.
 *
 * The ticket learns that an offered request was claimed only when it tries to take it
 * back and loses the race (the claim cell is the truth, see prefetch.ts).
 *
 * Its one timer is the next of its deadlines: --queue-timeout while it waits (queued or
 * offered), --timeout (504, then the interrupt), then --timeout-grace (the worker is
 * terminated). All are counted from admission.
 */
import type { Logger } from 'pino';
import type { StreamMessage, TaskResult, WireRequest } from '../../runtime/protocol.ts';
import { InterpoolError } from '../errors.ts';

export type TicketState = 'queued' | 'offered' | 'running' | 'settled';

/** Receives the stream messages of one request, in order. */
export interface StreamReceiver {
  onStream(message: StreamMessage, workerId: number): void;
}

/** Whoever answers the client: the task's result, or the error that ends the request. */
export interface RequestReceiver extends StreamReceiver {
  onTaskResult(result: TaskResult): void;
  fail(error: InterpoolError): void;
}

/** One hand-out of the request to a pool generation, as the ticket drives it. */
export interface Run {
  /** Offered to a busy worker: it waits its turn there. */
  readonly offered: boolean;
  /** Take it back before it runs: true when it never ran there (and never will). */
  withdraw(): boolean;
  /** Ask the worker running it to stop iterating and call close(). */
  cancel(): void;
  /** Raise KeyboardInterrupt in the interpreter running it (Python), and cancel it. */
  interrupt(): void;
  /** Flow control: hold back the worker producing its body, or let it go on. */
  setPaused(paused: boolean): void;
  /** Hard stop: terminate the worker it runs on. */
  terminate(): void;
  /** The response is finished on the main thread. */
  release(): void;
}

/** The ticket's side of the application group. */
export interface TicketLine {
  readonly limits: { readonly queueTimeout: number; readonly timeout: number; readonly timeoutGrace: number };
  readonly log: Pick<Logger, 'warn'>;
  /** Hand the request to the current generation. */
  run(ticket: RequestTicket): Run;
  /** Take it out of the admission queue (no matter if it is not there). */
  dequeue(ticket: RequestTicket): void;
}

type TimerKind = 'queue-timeout' | 'timeout' | 'grace';

export class RequestTicket {
  readonly envelope: WireRequest;
  /** Admission order: taken-back requests go back to the queue in it. */
  readonly order: number;
  readonly #line: TicketLine;
  readonly #receiver: RequestReceiver;
  #state: TicketState = 'queued';
  #run: Run | undefined;
  readonly #admittedAt = Date.now();
  /** When --timeout interrupted it (it runs still, for --timeout-grace at most). */
  #interruptedAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerKind: TimerKind | undefined;
  #timerAt = 0;

  constructor(line: TicketLine, envelope: WireRequest, receiver: RequestReceiver, order: number) {
    this.#line = line;
    this.envelope = envelope;
    this.#receiver = receiver;
    this.order = order;
  }

  get state(): TicketState {
    return this.#state;
  }

  /** A worker has room: run on the group's current generation (now, or offered to a busy worker). */
  start(): void {
    this.#run = this.#line.run(this);
    this.#enter(this.#run.offered ? 'offered' : 'running');
  }

  /** It waits in the admission queue: admitted there, or taken back by the pool before it ran. */
  queued(): void {
    if (this.#state === 'settled') return;
    this.#run = undefined;
    this.#enter('queued');
  }

  /** The app cannot serve it (shutting down, failing to boot): answer `error` if it has not run. */
  refuse(error: InterpoolError): void {
    this.#takeOut(error);
  }

  /** The client went away: leave the queue, or stop iterating and call close(). */
  cancel(): void {
    // Settled with a streamed result, it may still be streaming: the worker's REQUEST_ID decides.
    if (this.#state === 'settled' || !this.#takeOut(new InterpoolError('INTERPOOL_ERR_CLIENT_GONE'))) this.#run?.cancel();
  }

  /** Flow control: the client's socket is full (true) or drained (false). */
  setPaused(paused: boolean): void {
    this.#run?.setPaused(paused);
  }

  /** The response is finished on the main thread. */
  release(): void {
    this.#run?.release();
  }

  // The pool reports on the run it holds (PlacementOwner, placement.ts).

  onStream(message: StreamMessage, workerId: number): void {
    this.#receiver.onStream(message, workerId);
  }

  /** It ran: its result. */
  onResult(result: TaskResult): void {
    if (this.#state === 'settled') return;
    this.#settle();
    this.#receiver.onTaskResult(result);
  }

  /** Its worker died running it, or the pool was destroyed under it. */
  onFailed(error: unknown): void {
    if (this.#state === 'settled') return;
    this.#settle();
    this.#receiver.fail(error instanceof InterpoolError ? error : new InterpoolError('INTERPOOL_ERR_WORKER_DIED', [(error as Error)?.message ?? String(error)]));
  }

  /**
   * The one way out before a result: take the request back wherever it waits (the
   * queue, a claim cell, piscina's queue) and answer `error`. False when it cannot be
   * taken back because it runs already: it is running from now on.
   */
  #takeOut(error: InterpoolError): boolean {
    if (this.#state === 'settled') return true;
    if (this.#state === 'queued') this.#line.dequeue(this);
    else if (!this.#run!.withdraw()) {
      this.#enter('running');
      return false;
    }
    this.#settle();
    this.#receiver.fail(error);
    return true;
  }

  #enter(state: Exclude<TicketState, 'settled'>): void {
    this.#state = state;
    this.#arm();
  }

  #settle(): void {
    this.#state = 'settled';
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerKind = undefined;
  }

  /** Arm the one timer for the next deadline of the current state (kept if unchanged). */
  #arm(): void {
    const { queueTimeout, timeout, timeoutGrace } = this.#line.limits;
    let kind: TimerKind | undefined;
    let at = Infinity;
    if (this.#interruptedAt !== undefined) {
      kind = 'grace';
      at = this.#interruptedAt + timeoutGrace * 1000;
    } else {
      if (timeout > 0) {
        kind = 'timeout';
        at = this.#admittedAt + timeout * 1000;
      }
      // Queued and offered requests wait; at a tie, the wait limit is what ended it.
      const waits = this.#state === 'queued' || this.#state === 'offered';
      if (waits && queueTimeout > 0 && this.#admittedAt + queueTimeout * 1000 <= at) {
        kind = 'queue-timeout';
        at = this.#admittedAt + queueTimeout * 1000;
      }
    }
    if (kind === this.#timerKind && at === this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerKind = kind;
    this.#timerAt = at;
    this.#timer = undefined;
    if (kind === undefined) return;
    this.#timer = setTimeout(() => this.#onTimer(kind), Math.max(0, at - Date.now()));
    this.#timer.unref();
  }

  #onTimer(kind: TimerKind): void {
    this.#timer = undefined;
    this.#timerKind = undefined;
    if (this.#state === 'settled') return;
    const { queueTimeout, timeout, timeoutGrace } = this.#line.limits;
    switch (kind) {
      case 'queue-timeout':
        // Taken out; or it runs already, and --timeout applies from here.
        this.#takeOut(new InterpoolError('INTERPOOL_ERR_QUEUE_TIMEOUT', [queueTimeout]));
        return;
      case 'timeout': {
        // The client gets its 504 now (mid-stream: an aborted connection), wherever the request is.
        const error = new InterpoolError('INTERPOOL_ERR_TIMEOUT', [timeout]);
        this.#receiver.fail(error);
        this.#interruptedAt = Date.now();
        // Taken out before it ran, it never reaches an interpreter; else it is interrupted.
        if (!this.#takeOut(error)) this.#run!.interrupt();
        return;
      }
      case 'grace':
        this.#line.log.warn({ requestId: this.envelope.id, timeoutGrace }, 'interpreter did not return after its timeout interrupt; terminating its worker');
        this.#run!.terminate();
        return;
    }
  }
}
