/**
 * One generation of an app's interpreters: a piscina pool whose every worker thread
 * holds one interpreter running this app and nothing else (two apps never share an
 * isolate). A reload starts a new generation beside the old one.
 *
 * The pool knows each worker through the messages it posts at start (its stream port
 * and shared control block, then its boot report), routes stream messages back to the
 * request they belong to, and replaces workers that retire (max requests, memory),
 * time out, or die — with the reason for every exit.
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { Piscina } from 'piscina';
import { MAX_PREFETCH, WITHDRAWN, type BootReport, type StreamMessage, type TaskResult, type WireRequest, type WorkerBooted, type WorkerHello, type WorkerSpec } from '../../runtime/protocol.ts';
import type { AppConfig } from '../config.ts';
import { IdTable } from '../id-table.ts';
import { WorkerHandle, type ExitReason, type WorkerView } from './worker-handle.ts';

export { EXIT_REASONS, type ExitReason, type WorkerView } from './worker-handle.ts';

// A path, not a file: URL: piscina converts a URL back to a path on every run() call.
const WORKER_ENTRY = fileURLToPath(new URL('../../runtime/worker.ts', import.meta.url));

/**
 * How long a worker terminated at its timeout's grace may take to exit before it counts
 * as stuck. A thread running JS or WebAssembly stops at once; one blocked in C code (a
 * native extension in select(), a C loop) never sees the termination and never exits.
 */
export const STUCK_AFTER_MS = 3000;

/** Receives the stream messages of one request, in order. */
export interface StreamReceiver {
  onStream(message: StreamMessage, workerId: number): void;
}

export interface WorkerExit {
  workerId: number;
  generation: number;
  reason: ExitReason;
  served: number;
  uptimeMs: number;
}

export interface PoolHooks {
  onBooted(pool: WorkerPool, report: BootReport): void;
  onExit(pool: WorkerPool, exit: WorkerExit): void;
  /** A worker started (before its interpreter boots): link it to the app's shared store. */
  onStarted?(pool: WorkerPool, hello: WorkerHello): void;
  /** A stuck thread (see {@link STUCK_AFTER_MS}) left the pool, or exited after all. */
  onStuckChange?(pool: WorkerPool): void;
}

/** Whoever holds a request that may be taken back from a busy worker and run elsewhere. */
export interface Requeueable {
  requeue(): void;
}

/** What the load balancer reads from a task, and fills in: where it went, as what. */
interface Placement {
  envelope: WireRequest;
  owner: Requeueable;
  /** The array piscina posts the task with (the body's buffer, or nothing). */
  transferList: ArrayBuffer[];
  handle: WorkerHandle | undefined;
  offer: Offer | undefined;
  /**
   * Taken back while it waited in piscina's queue for a worker (one booting, or not yet
   * started): it must not run. piscina cannot drop a queued task, so the next worker
   * with room gets it marked {@link WITHDRAWN} and answers `not-run`.
   */
  withdrawn: boolean;
}

/** What piscina's load balancer is given for each worker. */
type PiscinaWorkerView = { id: number; currentUsage: number };

/** A request offered to a busy worker (prefetch), until that worker claims it or it is taken back. */
interface Offer {
  id: number;
  claim: number;
  handle: WorkerHandle;
  owner: Requeueable;
  /** Offered; taken back by the main thread (it never ran there); or claimed by the worker. */
  state: 'offered' | 'taken-back' | 'claimed';
}

/**
 * A request handed to a worker: its result, and the hard stop for timeouts. `result`
 * resolves undefined when the request did not run there (see {@link WorkerPool.run}).
 *
 * A class on purpose, not an object literal with a getter: V8 gives each literal whose
 * getter is a fresh closure a hidden class (map) of its own, maps live in the old
 * generation, and through the getter's closure every such map kept its whole request
 * alive across young-generation GCs until the next full one. That promoted about 10 MB
 * per minor GC under load (docs/loadtest.md, "The promoted garbage").
 */
export class RunningTask {
  readonly result: Promise<TaskResult | undefined>;
  readonly #placement: Placement;
  readonly #terminate: () => void;

  constructor(result: Promise<TaskResult | undefined>, placement: Placement, terminate: () => void) {
    this.result = result;
    this.#placement = placement;
    this.#terminate = terminate;
  }

  /** Handed to a busy worker, where it waits its turn (it counts as queued). */
  get offered(): boolean {
    return this.#placement.offer !== undefined;
  }

  /** Terminate the worker running this task (piscina replaces it). */
  terminate(): void {
    this.#terminate();
  }
}


export class WorkerPool {
  readonly config: AppConfig;
  readonly generation: number;
  readonly #log: Logger;
  readonly #hooks: PoolHooks;
  readonly #piscina: Piscina<WireRequest, TaskResult>;
  readonly #workers = new Map<number, WorkerHandle>();
  /** Workers that did not exit when terminated (blocked in C code): out of the pool, still alive. */
  readonly #stuck = new Map<number, WorkerHandle>();
  readonly #receivers = new IdTable<StreamReceiver>();
  /** Requests whose worker retires once their response is complete. */
  readonly #retireOnRelease = new Map<number, number>();
  readonly #bootWaiters = new Set<() => boolean>();
  readonly #drainWaiters = new Set<() => boolean>();
  /** Offered, not yet claimed requests, oldest first (an array: see IdTable for why not a Map). */
  readonly #offers: Offer[] = [];
  /** Requests handed to piscina that no worker has taken yet, oldest first. */
  readonly #unplaced: Placement[] = [];
  #rebalancing = false;
  #inFlight = 0;
  #closing: ExitReason | undefined;
  #destroying: Promise<void> | undefined;
  /** Rejects once the pool is destroyed: nothing waits for a boot that will not come. */
  readonly #destroyed: Promise<never>;
  #markDestroyed!: (error: Error) => void;

  constructor(config: AppConfig, generation: number, log: Logger, hooks: PoolHooks) {
    this.config = config;
    this.generation = generation;
    this.#log = log;
    this.#hooks = hooks;
    this.#destroyed = new Promise<never>((_resolve, reject) => { this.#markDestroyed = reject; });
    this.#destroyed.catch(() => {});
    const spec: WorkerSpec = {
      app: config.name, kind: config.kind, file: config.file, callable: config.callable,
      // The generation keys Python's snapshot: a reload must import the files anew.
      settings: { ...config.settings, generation },
      limits: { maxRequests: config.maxRequests, maxRequestsJitter: config.maxRequestsJitter, memoryLimitMb: config.memoryLimit },
      overlap: config.inline,
      // Interpreters keep their module state apart as processes do (PEP 3333's
      // "an equivalent application object may be simultaneously invoked").
      multiprocess: config.workers > 1 || cluster.isWorker,
    };
    this.#piscina = new Piscina({
      filename: WORKER_ENTRY,
      workerData: spec,
      minThreads: config.minWorkers,
      maxThreads: config.workers,
      // Embedded mode: the one interpreter takes every admitted request at once.
      ...(config.inline ? { concurrentTasksPerWorker: config.maxQueue } : {}),
      idleTimeout: config.minWorkers < config.workers ? config.idleTimeout * 1000 : Infinity,
      ...(config.inline ? {} : { concurrentTasksPerWorker: 1 + MAX_PREFETCH }),
      // Keep each idle worker's event loop running (timers, sockets of the app):
      // piscina's default Atomics.wait would freeze it between tasks.
      atomics: 'async',
      // piscina's run- and wait-time histograms: nothing reads them (the admin keeps its own).
      recordTiming: false,
      loadBalancer: (task, workers) => this.#place((task as unknown as Record<symbol, Placement | null>)[Piscina.queueOptionsSymbol] ?? null, workers),
      ...(config.kind === 'javascript' && config.memoryLimit > 0
        // A hard ceiling for a leak within one request; the soft limit is checked after each.
        ? { resourceLimits: { maxOldGenerationSizeMb: config.memoryLimit * 2 } }
        : {}),
    });
    this.#piscina.on('message', (message: unknown) => this.#onWorkerMessage(message));
    // A worker that fails while idle (an uncaught exception in a timer) is replaced by
    // piscina; without a listener the 'error' event would take the server down with it.
    this.#piscina.on('error', (error: Error) => this.#log.error({ err: error }, 'a worker failed while idle'));
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Threads of this generation stuck in C code: they hold memory (and maybe a CPU) until the process ends. */
  get stuckThreads(): number {
    return this.#stuck.size;
  }

  /** Workers that can take a request now or soon (not failed, not retiring). */
  get usableWorkers(): number {
    let unusable = 0;
    for (const handle of this.#workers.values()) if (handle.failed || handle.exitReason) unusable++;
    return this.config.workers - unusable;
  }

  get hasCapacity(): boolean {
    return this.#inFlight < Math.max(1, this.usableWorkers) * this.#concurrency;
  }

  /**
   * Requests one worker holds at once: the one it runs plus MAX_PREFETCH waiting their
   * turn in it, or every admitted one in embedded mode (where they overlap).
   */
  get #concurrency(): number {
    return this.config.inline ? this.config.maxQueue : 1 + MAX_PREFETCH;
  }

  /** At least one interpreter of this generation booted and can serve. */
  get healthy(): boolean {
    for (const handle of this.#workers.values()) if (handle.boot && !handle.failed && !handle.exitReason) return true;
    return false;
  }

  /** Wait for the first boot report of this generation, success or failure. */
  firstBoot(): Promise<BootReport> {
    return this.#whenBooted((reports) => reports[0]);
  }

  /** Resolves once `count` workers booted; rejects with the first failed boot report. */
  async allBooted(count = this.config.minWorkers): Promise<void> {
    const failure = await this.#whenBooted((reports) => reports.find((report) => report.error) ?? (reports.length >= count ? null : undefined));
    if (failure) throw failure;
  }

  /** Re-evaluate `pick` on every boot report until it returns something other than undefined. */
  #whenBooted<T>(pick: (reports: BootReport[]) => T | undefined): Promise<T> {
    return Promise.race([this.#destroyed, new Promise<T>((resolve) => {
      const check = (): boolean => {
        const picked = pick([...this.#workers.values()].flatMap((handle) => (handle.boot ? [handle.boot] : [])));
        if (picked === undefined) return false;
        resolve(picked);
        return true;
      };
      if (!check()) this.#bootWaiters.add(check);
    })]);
  }

  /**
   * Hand a request to a worker: an idle one if there is one, else the least busy, where
   * it waits its turn (prefetch: the worker then goes from one request to the next
   * without waiting for the main thread). A waiting request is only offered: it is
   * taken back when another worker goes idle, when its own worker goes away, or at its
   * timeout. `result` resolves undefined when the request did not run there and must
   * be handed out again (`owner.requeue()` is called instead when this pool takes it
   * back on its own).
   */
  run(request: WireRequest, receiver: StreamReceiver, owner: Requeueable): RunningTask {
    this.#receivers.set(request.id, receiver);
    this.#inFlight++;
    // A request handed out before and taken back goes out again as a new task object:
    // piscina may still hold the old one in its queue, and reads its placement from it.
    const envelope: WireRequest = Piscina.queueOptionsSymbol in request ? { ...request, claim: undefined } : request;
    // Read back by the load balancer, wherever piscina decides where the task goes (at
    // once, or later from its own queue); a symbol key is not posted to the worker.
    // The body is transferred, unless the request is offered: it may have to be sent again.
    const transferList: ArrayBuffer[] = envelope.body ? [envelope.body.buffer as ArrayBuffer] : [];
    const placement: Placement = { envelope, owner, transferList, handle: undefined, offer: undefined, withdrawn: false };
    (envelope as WireRequest & { [key: symbol]: Placement })[Piscina.queueOptionsSymbol] = placement;
    this.#unplaced.push(placement);
    let settled = false;
    const done = () => {
      settled = true;
      // A withdrawn task left the count when it was withdrawn.
      if (!placement.withdrawn) this.#inFlight--;
      this.#forgetUnplaced(placement);
      if (placement.handle) placement.handle.assigned--;
    };
    // No AbortSignal per task: a hard stop terminates the worker that runs the request
    // (found through its control block), which is what piscina's abort would do anyway.
    const result = this.#piscina.run(envelope, transferList.length > 0 ? { transferList } : undefined).then(
      (outcome): TaskResult | undefined => {
        done();
        // Its owner went on without it (the worker answered not-run).
        if (placement.withdrawn) return undefined;
        const { offer } = placement;
        if (outcome.kind === 'not-run') {
          // Taken back already, or declined by a retiring worker (its cell still holds it).
          if (offer) this.#takeBack(offer);
          this.#notifyDrain();
          return undefined;
        }
        if (offer) this.#forget(offer, 'claimed');
        this.#noteRetirement(envelope.id, outcome.workerId);
        this.#notifyDrain();
        return outcome;
      },
      (error: unknown) => {
        done();
        // Withdrawn, then dropped by a pool destroyed before any worker took it.
        if (placement.withdrawn) return undefined;
        // Its worker died before claiming it: it never ran, it runs elsewhere.
        const { offer } = placement;
        const runsElsewhere = offer !== undefined && (this.#takeBack(offer) || offer.state === 'taken-back');
        if (!runsElsewhere) this.#receivers.delete(envelope.id);
        this.#notifyDrain();
        if (runsElsewhere) return undefined;
        throw error;
      },
    );
    const terminate = (): void => {
      if (settled) return;
      const handle = this.#findRunning(envelope.id);
      if (handle) {
        this.terminateWorker(handle.workerId, 'timeout');
        setTimeout(() => this.#unlessExited(handle), STUCK_AFTER_MS).unref();
      }
      // Handed to piscina but not yet picked up by its worker: look again shortly.
      else setTimeout(terminate, 50).unref();
    };
    return new RunningTask(result, placement, terminate);
  }

  /**
   * piscina's load balancer, for every task it places: an idle worker takes it to run
   * now; else the least busy worker that has room gets it as an offer (prefetch), in a
   * claim cell of its control block. Null keeps the task in piscina's queue.
   */
  #place<W extends PiscinaWorkerView>(placement: Placement | null, workers: W[]): W | null {
    if (placement?.withdrawn) {
      // Any worker with room answers not-run for it, and piscina's queue moves on.
      return workers.find((worker) => worker.currentUsage < this.#concurrency && this.#workers.get(worker.id)?.boot) ?? null;
    }
    if (this.config.inline || !placement) {
      const worker = workers.find((candidate) => candidate.currentUsage < this.#concurrency && this.#accepts(candidate.id)) ?? null;
      if (worker && placement) this.#forgetUnplaced(placement);
      return worker;
    }
    let leastBusy: { worker: W; handle: WorkerHandle } | undefined;
    for (const worker of workers) {
      const handle = this.#workers.get(worker.id);
      if (!handle?.accepts) continue;
      const usage = worker.currentUsage;
      if (usage === 0) {
        this.#assign(placement, handle);
        return worker;
      }
      if (handle.boot && usage < this.#concurrency && (!leastBusy || usage < leastBusy.worker.currentUsage)) leastBusy = { worker, handle };
    }
    if (!leastBusy) return null;
    const { envelope, owner } = placement;
    const claim = leastBusy.handle.offer(envelope.id);
    if (claim === undefined) return null;
    envelope.claim = claim;
    // piscina posts the task with this very array: an offered body is copied instead.
    placement.transferList.length = 0;
    placement.offer = { id: envelope.id, claim, handle: leastBusy.handle, owner, state: 'offered' };
    this.#offers.push(placement.offer);
    this.#assign(placement, leastBusy.handle);
    return leastBusy.worker;
  }

  #assign(placement: Placement, handle: WorkerHandle): void {
    placement.handle = handle;
    handle.assigned++;
    this.#forgetUnplaced(placement);
  }

  #forgetUnplaced(placement: Placement): void {
    const index = this.#unplaced.indexOf(placement);
    if (index >= 0) this.#unplaced.splice(index, 1);
  }

  /**
   * Take back a request still waiting in piscina's queue: it never runs (see
   * Placement.withdrawn), and stops counting as in flight at once.
   */
  #withdrawUnplaced(placement: Placement): void {
    this.#forgetUnplaced(placement);
    placement.withdrawn = true;
    placement.envelope.claim = WITHDRAWN;
    // Posted later to a worker that declines it: its body stays with its owner.
    placement.transferList.length = 0;
    this.#inFlight--;
    this.#receivers.delete(placement.envelope.id);
    this.#notifyDrain();
  }

  /**
   * Every request that waits for a worker of this generation to take it (the workers
   * are booting, or failing to boot) goes back to its owner, to run elsewhere or be
   * refused: nothing should wait on a boot that may never succeed.
   */
  takeBackUnplaced(): void {
    for (const placement of [...this.#unplaced]) {
      this.#withdrawUnplaced(placement);
      placement.owner.requeue();
    }
  }

  /**
   * Take back a request offered to a busy worker that has not started it; true when it
   * was taken back (it never ran), false when its worker claimed it (it runs there).
   */
  withdraw(id: number): boolean {
    const waiting = this.#unplaced.find((candidate) => candidate.envelope.id === id);
    if (waiting) {
      this.#withdrawUnplaced(waiting);
      return true;
    }
    const offer = this.#offers.find((candidate) => candidate.id === id);
    return offer !== undefined && this.#takeBack(offer);
  }

  #takeBack(offer: Offer): boolean {
    if (offer.state !== 'offered') return false;
    const takenBack = offer.handle.withdraw(offer.id, offer.claim);
    this.#forget(offer, takenBack ? 'taken-back' : 'claimed');
    // It may run in another generation now: a closing pool must not wait for it.
    if (takenBack) this.#receivers.delete(offer.id);
    return takenBack;
  }

  #forget(offer: Offer, state: Offer['state']): void {
    offer.state = state;
    // The same request may have been offered again since (same id, another offer).
    const index = this.#offers.indexOf(offer);
    if (index >= 0) this.#offers.splice(index, 1);
  }

  /**
   * While a worker is idle and another holds offered requests, move the oldest offer to
   * the idle one (its owner hands it out again). Called when nothing waits in the queue.
   */
  rebalance(): void {
    if (this.#rebalancing || this.#offers.length === 0) return;
    this.#rebalancing = true;
    try {
      while (this.#offers.length > 0 && this.hasIdleWorker) {
        const oldest = this.#offers[0]!;
        if (this.#takeBack(oldest)) oldest.owner.requeue();
      }
    } finally {
      this.#rebalancing = false;
    }
  }

  /** Requests offered to busy workers and not yet claimed: they are waiting, as if queued. */
  get offered(): number {
    let waiting = 0;
    // An offer its worker has claimed is running, though its result may not be in yet.
    for (const offer of this.#offers) if (offer.handle.holds(offer.id, offer.claim)) waiting++;
    return waiting;
  }

  /** A booted worker that takes requests and holds none. */
  get hasIdleWorker(): boolean {
    for (const handle of this.#workers.values()) if (handle.boot && handle.accepts && handle.assigned === 0) return true;
    return false;
  }

  /** A worker that goes: its offered requests run elsewhere. */
  #takeBackOffers(handle: WorkerHandle): void {
    for (const offer of [...this.#offers]) {
      if (offer.handle === handle && this.#takeBack(offer)) offer.owner.requeue();
    }
  }

  /** The request is over on the main side: drop its receiver, retire its worker if due. */
  release(id: number): void {
    this.#receivers.delete(id);
    this.#notifyDrain();
    const retiring = this.#retireOnRelease.get(id);
    if (retiring !== undefined) {
      this.#retireOnRelease.delete(id);
      this.terminateWorker(retiring);
    }
  }

  /** Ask the worker running this request to stop iterating and call close(). */
  cancel(id: number): boolean {
    const handle = this.#findRunning(id);
    handle?.cancel(id);
    return handle !== undefined;
  }

  /**
   * Flow control for a streamed response: pause the worker producing it while the
   * client's socket is full, resume (and wake it) once drained.
   */
  setPaused(id: number, paused: boolean): void {
    this.#findRunning(id)?.setPaused(id, paused);
  }

  /** Raise KeyboardInterrupt in the interpreter running this request (Python). */
  interrupt(id: number): boolean {
    const handle = this.#findRunning(id);
    handle?.interrupt(id);
    return handle !== undefined;
  }

  /**
   * Retire one worker gracefully: it takes no new request, finishes the one it is
   * serving (whole response included), then stops and is replaced.
   */
  retireWorker(workerId: number, reason: ExitReason): void {
    const handle = this.#workers.get(workerId);
    if (!handle) return;
    handle.exitReason ??= reason;
    // First take back what waits in it; what it claimed meanwhile is what it runs now.
    this.#takeBackOffers(handle);
    const running = handle.requestId;
    if (running !== 0 && this.#receivers.has(running)) this.#retireOnRelease.set(running, workerId);
    else this.terminateWorker(workerId);
  }

  /** Stop one worker now (piscina starts a replacement when the pool needs one). */
  terminateWorker(workerId: number, reason?: ExitReason): void {
    const handle = this.#workers.get(workerId);
    if (!handle) return;
    if (reason) handle.exitReason ??= reason;
    void handle.thread?.terminate();
  }

  /**
   * A worker terminated at its timeout that has not exited: its thread is blocked in C
   * code, where neither the interrupt nor the termination reaches it, and nothing can end
   * it short of ending the process. Count it as stuck and take it out of the pool; it
   * stays listed, as stuck, until it exits on its own, if ever.
   *
   * piscina lets go of a worker only when it exits (its terminate waits for the thread),
   * or through a task's abort signal — and a signal on every task changes how piscina
   * queues them. So the pool tells piscina what it would hear if the thread could end:
   * the worker's 'exit' event, emitted here. piscina then drops the worker, fails its
   * tasks (the timed-out one, and offers, which run elsewhere) and starts a replacement.
   */
  #unlessExited(handle: WorkerHandle): void {
    const thread = handle.thread;
    if (this.#workers.get(handle.workerId) !== handle || !thread) return;
    handle.exitReason = 'stuck';
    this.#log.error({ worker: handle.workerId, generation: this.generation, afterMs: STUCK_AFTER_MS },
      'a worker thread is stuck in C code and cannot be ended: it leaves the pool (a replacement starts unless the pool is closing) and stays until the process ends');
    // #onExit runs from the emitted event (this pool's own 'exit' listener).
    thread.emit('exit', 1);
    this.#stuck.set(handle.workerId, handle);
    // The real exit, if the thread ever returns from C: piscina has been told already
    // (hearing it twice, it would start workers again, in a pool that may be closed).
    thread.removeAllListeners('exit');
    thread.once('exit', () => this.#onExit(handle, 1));
    this.#hooks.onStuckChange?.(this);
  }

  workers(): WorkerView[] {
    return [...this.#workers.values()].map((handle) => handle.view(this.generation, this.#closing !== undefined));
  }

  /** The stuck threads of this generation, as the dashboard lists them (state "stuck"). */
  stuckWorkers(): WorkerView[] {
    return [...this.#stuck.values()].map((handle) => handle.view(this.generation, true));
  }

  /**
   * Finish running requests — their whole responses, streams included — then stop
   * every worker, counting each exit under `reason`. (piscina's own close() can resolve
   * while tasks still run, so the pool drains itself first.) Requests that wait (offered
   * to a busy worker, or for a worker to boot) go back to their owners. Nothing new
   * reaches a closing pool: the group sends new requests to its current generation only.
   */
  async close(reason: ExitReason): Promise<void> {
    this.#closing ??= reason;
    // What no worker took yet goes back to the group (the next generation, or a 503):
    // a close must not wait for a boot, nor a request behind a long response.
    this.takeBackUnplaced();
    for (const handle of this.#workers.values()) this.#takeBackOffers(handle);
    await new Promise<void>((resolve) => {
      const check = () => {
        if (!this.#destroying && (this.#inFlight > 0 || this.#receivers.size > 0)) return false;
        resolve();
        return true;
      };
      if (!check()) this.#drainWaiters.add(check);
    });
    await this.destroy(reason);
  }

  /** Stop now, in-flight requests included (a shutdown past its grace period). */
  destroy(reason: ExitReason): Promise<void> {
    this.#closing ??= reason;
    this.#destroying ??= this.#destroyNow();
    return this.#destroying;
  }

  async #destroyNow(): Promise<void> {
    this.#markDestroyed(new Error(`the pool of generation ${this.generation} was closed before it booted`));
    // A close waiting for the drain stops waiting (and finds the pool destroyed).
    this.#notifyDrain();
    this.#drainWaiters.clear();
    // Terminates every worker, a booting one too (piscina does not wait for its boot),
    // and waits for their exits: one stuck in C code would be waited for forever.
    const destroyed = this.#piscina.destroy();
    const giveUp = setTimeout(() => { for (const handle of [...this.#workers.values()]) this.#unlessExited(handle); }, STUCK_AFTER_MS);
    await destroyed;
    clearTimeout(giveUp);
    for (const handle of this.#workers.values()) handle.port.close();
  }

  #notifyDrain(): void {
    for (const waiter of [...this.#drainWaiters]) if (waiter()) this.#drainWaiters.delete(waiter);
  }

  #accepts(workerId: number): boolean {
    return this.#workers.get(workerId)?.accepts ?? true;
  }

  #findRunning(id: number): WorkerHandle | undefined {
    // Embedded mode: every request in flight runs in the one interpreter.
    if (this.config.inline) return this.#receivers.has(id) ? this.#workers.values().next().value : undefined;
    for (const handle of this.#workers.values()) {
      if (handle.requestId === id) return handle;
    }
    return undefined;
  }

  /** The worker set RETIRING before returning: replace it once this response is done. */
  #noteRetirement(requestId: number, workerId: number): void {
    const handle = this.#workers.get(workerId);
    if (!handle) return;
    const retiring = handle.retireReason;
    if (retiring === undefined) return;
    handle.exitReason ??= retiring;
    this.#takeBackOffers(handle);
    if (this.config.inline) {
      // Embedded mode: the one interpreter may still serve others; stop it once all are done.
      const whenIdle = () => {
        if (this.#inFlight > 0 || this.#receivers.size > 0) return false;
        this.terminateWorker(workerId);
        return true;
      };
      if (!whenIdle()) this.#drainWaiters.add(whenIdle);
      return;
    }
    if (this.#receivers.has(requestId)) this.#retireOnRelease.set(requestId, workerId);
    else this.terminateWorker(workerId);
  }

  #onWorkerMessage(message: unknown): void {
    const typed = message as WorkerHello | WorkerBooted | undefined;
    if (typed?.type === 'interpool:hello') this.#onHello(typed);
    else if (typed?.type === 'interpool:booted') this.#onBooted(typed.report);
  }

  #onHello(hello: WorkerHello): void {
    const thread = this.#piscina.threads.find((worker) => worker.threadId === hello.workerId);
    const handle = new WorkerHandle(hello, thread);
    handle.port.on('message', (stream: StreamMessage) => this.#onStreamMessage(stream, handle));
    handle.port.unref();
    thread?.once('exit', (code: number) => this.#onExit(handle, code));
    this.#workers.set(handle.workerId, handle);
    this.#hooks.onStarted?.(this, hello);
  }

  #onBooted(report: BootReport): void {
    const handle = this.#workers.get(report.workerId);
    if (!handle) return;
    handle.boot = report;
    for (const waiter of [...this.#bootWaiters]) if (waiter()) this.#bootWaiters.delete(waiter);
    this.#hooks.onBooted(this, report);
  }

  #onStreamMessage(message: StreamMessage, handle: WorkerHandle): void {
    if (message.type === 'log') {
      // What the worker printed (runtime/worker-output.ts): stdout at info, stderr at warn.
      if (message.stream === 'stdout') this.#log.info({ worker: handle.workerId, stream: 'stdout' }, message.line);
      else this.#log.warn({ worker: handle.workerId, stream: message.stream ?? 'wsgi.errors' }, message.line);
      return;
    }
    this.#receivers.get(message.id)?.onStream(message, handle.workerId);
  }

  #onExit(handle: WorkerHandle, code: number): void {
    if (this.#stuck.delete(handle.workerId)) {
      // Counted when it got stuck: whatever held it in C code returned after all.
      this.#log.warn({ worker: handle.workerId, generation: this.generation }, 'a stuck worker thread exited after all');
      this.#hooks.onStuckChange?.(this);
      return;
    }
    this.#workers.delete(handle.workerId);
    handle.port.close();
    const diedMidRequest = handle.requestId !== 0;
    const reason: ExitReason = handle.exitReason
      ?? (handle.failed ? 'boot-failed' : undefined)
      ?? this.#closing
      ?? (diedMidRequest || code === 0 || this.config.minWorkers >= this.config.workers ? 'crashed' : 'idle');
    this.#hooks.onExit(this, {
      workerId: handle.workerId,
      generation: this.generation,
      reason,
      served: handle.served,
      uptimeMs: Date.now() - handle.startedAt,
    });
  }
}
