/**
 * The request ticket's state machine (server/pool/request-ticket.ts): queued → offered →
 * running → settled, one way out before a result, one timer. Its run is a placement over
 * a fake worker's real claim cells (fake-worker.ts); its deadlines run on fake timers,
 * advanced by the test: nothing here sleeps or measures time.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StreamMessage, TaskResult, WireRequest } from '../../../runtime/protocol.ts';
import type { InterpoolError } from '../../../server/errors.ts';
import { AdmissionQueue } from '../../../server/pool/admission-queue.ts';
import * as prefetch from '../../../server/pool/prefetch.ts';
import { RequestTicket, type RequestReceiver, type Run, type TicketLine } from '../../../server/pool/request-ticket.ts';
import { FakeWorker } from './fake-worker.ts';

/** What the client side heard, in order. */
class Receiver implements RequestReceiver {
  readonly heard: string[] = [];
  onStream(message: StreamMessage): void { this.heard.push(`stream ${message.type}`); }
  onTaskResult(result: TaskResult): void { this.heard.push(`result ${result.kind}`); }
  fail(error: InterpoolError): void { this.heard.push(`fail ${error.code}`); }
}

/** A hand-out to a fake worker: offered in one of its claim cells, or started at once. */
class FakeRun implements Run {
  readonly signals: string[] = [];
  readonly #worker: FakeWorker;
  readonly #id: number;
  readonly #claim: number | undefined;

  constructor(worker: FakeWorker, id: number, busy: boolean) {
    this.#worker = worker;
    this.#id = id;
    this.#claim = busy ? prefetch.offer(worker.control, id) : undefined;
    if (!busy) worker.start(id);
  }

  get offered(): boolean { return this.#claim !== undefined; }
  withdraw(): boolean { return this.#claim !== undefined && prefetch.takeBack(this.#worker.control, this.#id, this.#claim); }
  /** The worker's turn comes: it tries to claim the request. */
  claimByWorker(): boolean { return this.#worker.claim(this.#id, this.#claim!); }
  cancel(): void { this.signals.push('cancel'); }
  interrupt(): void { this.signals.push('interrupt'); }
  setPaused(paused: boolean): void { this.signals.push(paused ? 'pause' : 'resume'); }
  terminate(): void { this.signals.push('terminate'); }
  release(): void { this.signals.push('release'); }
}

/** The group as a ticket sees it: a real admission queue, a fake worker that is busy or not. */
class Line implements TicketLine {
  readonly limits = { queueTimeout: 0, timeout: 0, timeoutGrace: 5 };
  readonly warnings: string[] = [];
  readonly log = { warn: (_fields: object, message: string) => { this.warnings.push(message); } } as TicketLine['log'];
  readonly queue = new AdmissionQueue<RequestTicket>(10, (ticket) => ticket.order);
  readonly worker = new FakeWorker();
  readonly runs: FakeRun[] = [];
  busy = false;

  run(ticket: RequestTicket): Run {
    const run = new FakeRun(this.worker, ticket.envelope.id, this.busy);
    this.runs.push(run);
    return run;
  }

  dequeue(ticket: RequestTicket): void {
    this.queue.remove(ticket);
  }

  admit(id: number, receiver = new Receiver()): { ticket: RequestTicket; receiver: Receiver } {
    const envelope: WireRequest = { id, cgi: {}, urlScheme: 'http' };
    const ticket = new RequestTicket(this, envelope, receiver, id);
    return { ticket, receiver };
  }

  enqueue(ticket: RequestTicket): void {
    this.queue.push(ticket);
    ticket.queued();
  }
}

const response: TaskResult = { kind: 'response', workerId: 1, status: '200 OK', headers: [], body: [] };

describe('request ticket', () => {
  let line: Line;
  beforeEach(() => {
    vi.useFakeTimers();
    line = new Line();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs at once on an idle worker: running, then settled by its result', () => {
    const { ticket, receiver } = line.admit(1);
    ticket.start();
    expect(ticket.state).toBe('running');
    ticket.onStream({ type: 'start', id: 1, status: '200 OK', headers: [] } as StreamMessage, 1);
    ticket.onResult(response);
    expect(ticket.state).toBe('settled');
    // Whatever comes for a settled ticket is not delivered again.
    ticket.onResult(response);
    ticket.onFailed(new Error('late'));
    expect(receiver.heard).toEqual(['stream start', 'result response']);
  });

  it('offered to a busy worker, claimed: a cancel loses the race and stops the running request', () => {
    line.busy = true;
    const { ticket, receiver } = line.admit(1);
    ticket.start();
    expect(ticket.state).toBe('offered');
    expect(line.runs[0]!.claimByWorker()).toBe(true);
    ticket.cancel();
    expect(ticket.state).toBe('running');
    expect(line.runs[0]!.signals).toEqual(['cancel']);
    expect(receiver.heard).toEqual([]);
  });

  it('offered to a busy worker, cancelled first: settled without running, and the worker declines it', () => {
    line.busy = true;
    const { ticket, receiver } = line.admit(1);
    ticket.start();
    ticket.cancel();
    expect(ticket.state).toBe('settled');
    expect(receiver.heard).toEqual(['fail INTERPOOL_ERR_CLIENT_GONE']);
    expect(line.runs[0]!.claimByWorker()).toBe(false);
    expect(line.runs[0]!.signals).toEqual([]);
  });

  it('queued, then its client leaves: out of the queue, never handed out', () => {
    const { ticket, receiver } = line.admit(1);
    line.enqueue(ticket);
    ticket.cancel();
    expect(ticket.state).toBe('settled');
    expect(line.queue.size).toBe(0);
    expect(line.runs).toEqual([]);
    expect(receiver.heard).toEqual(['fail INTERPOOL_ERR_CLIENT_GONE']);
  });

  it('taken back by the pool: queued again, then handed out anew', () => {
    line.busy = true;
    const { ticket } = line.admit(1);
    ticket.start();
    expect(line.runs[0]!.withdraw()).toBe(true);
    ticket.queued();
    expect(ticket.state).toBe('queued');
    line.busy = false;
    ticket.start();
    expect(ticket.state).toBe('running');
    expect(line.runs).toHaveLength(2);
  });

  it('requeue order: offers taken back from a worker that dies go back in admission order, ahead of later requests', () => {
    line.busy = true;
    const admitted = [1, 2, 3].map((id) => line.admit(id).ticket);
    for (const ticket of admitted) ticket.start();
    const later = line.admit(4).ticket;
    line.enqueue(later);
    // The worker claimed the first offer, then died; the other two still sit in its cells.
    expect(line.runs[0]!.claimByWorker()).toBe(true);
    // Whatever order the pool finds them in, each goes back through putBack.
    for (const index of [2, 1]) {
      expect(line.runs[index]!.withdraw()).toBe(true);
      admitted[index]!.queued();
      line.queue.putBack(admitted[index]!);
    }
    expect(admitted.map((ticket) => ticket.state)).toEqual(['offered', 'queued', 'queued']);
    expect([line.queue.shift(), line.queue.shift(), line.queue.shift()]).toEqual([admitted[1], admitted[2], later]);
  });

  it('refused while queued (shutdown): settled with that error', () => {
    const { ticket, receiver } = line.admit(1);
    line.enqueue(ticket);
    line.queue.drain((queued) => queued.refuse({ code: 'INTERPOOL_ERR_SHUTTING_DOWN' } as InterpoolError));
    expect(ticket.state).toBe('settled');
    expect(receiver.heard).toEqual(['fail INTERPOOL_ERR_SHUTTING_DOWN']);
  });

  it('a worker that dies under it, whatever the error is called, answers WORKER_DIED (no silent AbortError)', () => {
    const { ticket, receiver } = line.admit(1);
    ticket.start();
    const abort = Object.assign(new Error('The task has been aborted'), { name: 'AbortError' });
    ticket.onFailed(abort);
    expect(ticket.state).toBe('settled');
    expect(receiver.heard).toEqual(['fail INTERPOOL_ERR_WORKER_DIED']);
  });

  it('flow control and release go to its run', () => {
    const { ticket } = line.admit(1);
    ticket.start();
    ticket.setPaused(true);
    ticket.setPaused(false);
    ticket.onResult(response);
    ticket.release();
    expect(line.runs[0]!.signals).toEqual(['pause', 'resume', 'release']);
  });

  describe('deadlines: one timer at a time', () => {
    it('--queue-timeout while queued: out of the queue with QUEUE_TIMEOUT', () => {
      Object.assign(line.limits, { queueTimeout: 2, timeout: 10 });
      const { ticket, receiver } = line.admit(1);
      line.enqueue(ticket);
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(1999);
      expect(ticket.state).toBe('queued');
      vi.advanceTimersByTime(1);
      expect(ticket.state).toBe('settled');
      expect(line.queue.size).toBe(0);
      expect(receiver.heard).toEqual(['fail INTERPOOL_ERR_QUEUE_TIMEOUT']);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('--queue-timeout while offered, after the worker claimed it: it runs on, and --timeout applies', () => {
      Object.assign(line.limits, { queueTimeout: 2, timeout: 10 });
      line.busy = true;
      const { ticket, receiver } = line.admit(1);
      ticket.start();
      line.runs[0]!.claimByWorker();
      vi.advanceTimersByTime(2000);
      expect(ticket.state).toBe('running');
      expect(receiver.heard).toEqual([]);
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(8000);
      expect(receiver.heard).toEqual(['fail INTERPOOL_ERR_TIMEOUT']);
      expect(line.runs[0]!.signals).toEqual(['interrupt']);
    });

    it('--timeout while running: 504 and the interrupt, then the worker terminated after --timeout-grace', () => {
      Object.assign(line.limits, { timeout: 3, timeoutGrace: 1 });
      const { ticket, receiver } = line.admit(1);
      ticket.start();
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(3000);
      expect(receiver.heard).toEqual(['fail INTERPOOL_ERR_TIMEOUT']);
      expect(line.runs[0]!.signals).toEqual(['interrupt']);
      expect(ticket.state).toBe('running');
      vi.advanceTimersByTime(1000);
      expect(line.runs[0]!.signals).toEqual(['interrupt', 'terminate']);
      expect(line.warnings).toHaveLength(1);
    });

    it('--timeout while running, and the interpreter returns within the grace: nothing is terminated', () => {
      Object.assign(line.limits, { timeout: 3, timeoutGrace: 1 });
      const { ticket } = line.admit(1);
      ticket.start();
      vi.advanceTimersByTime(3000);
      ticket.onResult({ kind: 'error', workerId: 1, error: { code: 'APP_INTERRUPTED', message: 'interrupted' }, headersSent: false } as unknown as TaskResult);
      expect(vi.getTimerCount()).toBe(0);
      vi.advanceTimersByTime(5000);
      expect(line.runs[0]!.signals).toEqual(['interrupt']);
    });

    it('--timeout while offered and unclaimed: taken back, it never reaches an interpreter', () => {
      Object.assign(line.limits, { timeout: 3 });
      line.busy = true;
      const { ticket, receiver } = line.admit(1);
      ticket.start();
      vi.advanceTimersByTime(3000);
      expect(ticket.state).toBe('settled');
      expect(receiver.heard[0]).toBe('fail INTERPOOL_ERR_TIMEOUT');
      expect(line.runs[0]!.claimByWorker()).toBe(false);
      expect(line.runs[0]!.signals).toEqual([]);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('counts from admission, wherever it waited: a requeued request keeps its deadline', () => {
      Object.assign(line.limits, { queueTimeout: 5 });
      line.busy = true;
      const { ticket, receiver } = line.admit(1);
      ticket.start();
      vi.advanceTimersByTime(3000);
      line.runs[0]!.withdraw();
      ticket.queued();
      line.queue.putBack(ticket);
      vi.advanceTimersByTime(1999);
      expect(ticket.state).toBe('queued');
      vi.advanceTimersByTime(1);
      expect(receiver.heard).toEqual(['fail INTERPOOL_ERR_QUEUE_TIMEOUT']);
    });

    it('a settled ticket holds no timer', () => {
      Object.assign(line.limits, { queueTimeout: 5, timeout: 10 });
      const { ticket } = line.admit(1);
      ticket.start();
      ticket.onResult(response);
      expect(vi.getTimerCount()).toBe(0);
    });
  });
});
