/**
 * piscina, behind one file: the thread pool one generation of an app runs on. The rest
 * of server/pool/ sees threads by their id and tasks as placements; what this file
 * relies on in piscina, and why, is written here (test/unit/pool/piscina-canary.test.ts
 * fails if piscina stops behaving so):
 *
 * - The load balancer reads each task's placement from a symbol key of the task object
 *   (piscina's `queueOptionsSymbol`), which piscina never posts to the worker.
 * - piscina posts a task with the very transferList array it was given; emptying that
 *   array in the balancer (an offered request: its body may have to be sent again)
 *   makes piscina copy the body instead of transferring it.
 * - `workerCreate` hands out each worker's live view, whose `currentUsage` is the one
 *   count of the tasks a worker holds.
 * - A thread that cannot exit (blocked in C code) is dropped by emitting its 'exit'.
 */
import type { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { TaskResult, WireRequest } from '../../runtime/protocol.ts';
import type { WorkerResourceLimits } from '../worker-resource-limits.ts';

/** What piscina's load balancer is given for each ready worker. */
export interface ThreadView {
  readonly id: number;
  readonly currentUsage: number;
}

/** What the balancer reads from a task, and fills in. */
export interface PlacedTask {
  readonly envelope: WireRequest;
  /** The array piscina posts the task with (the body's buffer, or nothing). */
  readonly transferList: ArrayBuffer[];
}

export interface PiscinaSetup<P extends PlacedTask> {
  filename: string;
  workerData: unknown;
  minThreads: number;
  maxThreads: number;
  concurrentTasksPerWorker: number;
  idleTimeout: number;
  resourceLimits?: WorkerResourceLimits;
  /** Choose a worker for a task (one of `workers`), or null to leave it in piscina's queue. */
  place<W extends ThreadView>(task: P, workers: readonly W[]): W | null;
  /** A message a worker posted outside any task (its hello, its boot report). */
  onMessage(message: unknown): void;
  /** A worker failed while idle (an uncaught exception in a timer). */
  onIdleError(error: Error): void;
}

const PLACEMENT = Piscina.queueOptionsSymbol;

export class PiscinaAdapter<P extends PlacedTask> {
  readonly #piscina: Piscina<WireRequest, TaskResult>;
  /** Each ready worker's live view, by thread id (piscina's count of its tasks). */
  readonly #views = new Map<number, ThreadView>();
  /**
   * Each thread, by id, until it exits: piscina stops listing a thread as soon as it
   * terminates it (destroy() does so for all), and one blocked in C code never exits.
   */
  readonly #threads = new Map<number, Worker>();

  constructor(setup: PiscinaSetup<P>) {
    this.#piscina = new Piscina({
      filename: setup.filename,
      workerData: setup.workerData,
      minThreads: setup.minThreads,
      maxThreads: setup.maxThreads,
      concurrentTasksPerWorker: setup.concurrentTasksPerWorker,
      idleTimeout: setup.idleTimeout,
      // Keep each idle worker's event loop running (timers, sockets of the app):
      // piscina's default Atomics.wait would freeze it between tasks.
      atomics: 'async',
      // piscina's run- and wait-time histograms: nothing reads them (the admin keeps its own).
      recordTiming: false,
      loadBalancer: (task, workers) => {
        const placed = (task as unknown as Record<symbol, P | undefined>)[PLACEMENT];
        // Every task comes through run() below, so each has its placement.
        if (!placed) return null;
        const chosen = setup.place(placed, workers as unknown as ThreadView[]);
        // piscina hands tasks to workers that are not ready yet (it announces them with
        // 'workerCreate' once ready): their count must be known from the first task on.
        if (chosen) this.#track(chosen);
        return chosen as never;
      },
      ...(setup.resourceLimits ? { resourceLimits: setup.resourceLimits } : {}),
    });
    this.#piscina.on('message', setup.onMessage);
    // Without a listener the 'error' event would take the server down with the worker.
    this.#piscina.on('error', setup.onIdleError);
    this.#piscina.on('workerCreate', (view: ThreadView) => this.#track(view));
    // A view reads its id off its thread, and an exited thread's id is -1: a worker
    // destroyed after its exit was forgotten at the exit already (#track).
    this.#piscina.on('workerDestroy', (view: ThreadView) => {
      if (view.id !== -1) this.#views.delete(view.id);
    });
  }

  /**
   * Know a worker by its thread id until its thread exits. The id is read now: a view
   * reads it off the thread, and once the thread has exited it reads -1 (keyed by that,
   * every recycled worker's thread, view and ports stayed in these maps: ~10 KiB a
   * recycle, docs/loadtest.md).
   */
  #track(view: ThreadView): void {
    const id = view.id;
    if (id === -1) return;
    this.#views.set(id, view);
    if (this.#threads.has(id)) return;
    const thread = this.#piscina.threads.find((worker) => worker.threadId === id);
    if (!thread) return;
    this.#threads.set(id, thread);
    thread.once('exit', () => {
      this.#threads.delete(id);
      this.#views.delete(id);
    });
  }

  /**
   * Hand a task to piscina, which places it through the balancer now or later (from its
   * own queue). No AbortSignal: a signal on every task changes how piscina queues them;
   * a hard stop terminates the worker instead ({@link terminate}).
   */
  run(task: P): Promise<TaskResult> {
    (task.envelope as WireRequest & Record<symbol, P>)[PLACEMENT] = task;
    return this.#piscina.run(task.envelope, task.transferList.length > 0 ? { transferList: task.transferList } : undefined);
  }

  /**
   * A request handed out before and taken back goes out again as a new task object:
   * piscina may still hold the old one in its queue, and reads its placement from it; an
   * offer on a worker's port may still wait to be posted with its claim cell.
   */
  static freshTask(envelope: WireRequest): WireRequest {
    return PLACEMENT in envelope || envelope.claim !== undefined ? { ...envelope, claim: undefined } : envelope;
  }

  /** The body stays with the main thread: piscina copies it when it posts the task. */
  static keepBody(task: PlacedTask): void {
    task.transferList.length = 0;
  }

  /** Tasks the worker holds now: running, waiting in its claim cells, or declining. */
  usage(workerId: number): number {
    return this.#views.get(workerId)?.currentUsage ?? 0;
  }

  thread(workerId: number): Worker | undefined {
    return this.#threads.get(workerId) ?? this.#piscina.threads.find((worker) => worker.threadId === workerId);
  }

  /** Stop one worker now (piscina starts a replacement when the pool needs one). */
  terminate(workerId: number): void {
    void this.thread(workerId)?.terminate();
  }

  /**
   * A thread that did not exit when terminated is blocked in C code, where the
   * termination never reaches it. piscina lets go of a worker only when it exits, so it
   * is told what it would hear if the thread could end: the worker's 'exit' event. piscina
   * then drops the worker, fails its tasks and starts a replacement. `onRealExit` runs if
   * the thread ever returns from C and exits after all (piscina must not hear it twice).
   */
  abandon(thread: Worker, onRealExit: () => void): void {
    this.#threads.delete(thread.threadId);
    thread.emit('exit', 1);
    thread.removeAllListeners('exit');
    thread.once('exit', onRealExit);
  }

  /** Terminate every worker, a booting one too, and wait for their exits. */
  destroy(): Promise<void> {
    return this.#piscina.destroy();
  }
}
