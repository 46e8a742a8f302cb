/**
 * One generation of an app's interpreters: a piscina pool whose every worker thread
 * holds one interpreter running this app and nothing else (two apps never share an
 * isolate). A reload starts a new generation beside the old one.
 *
 * The pool knows each worker through the messages it posts at start (its stream port
 * and shared control block, then its boot report), routes stream messages back to the
 * request they belong to, and replaces workers that retire (max requests, memory),
 * time out, or die — with the reason for every exit.
 *
 * Each hand-out of a request is a {@link Placement}: where it went (its worker, or
 * piscina's queue while workers boot) and whose it is. Whether an offered request still
 * waits is read from its worker's claim cell (prefetch.ts), never kept here.
 */
import cluster from 'node:cluster';
import { receiveMessageOnPort } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { MAX_PREFETCH, WITHDRAWN, appendPortRequest, type BootReport, type PortRequests, type PortResponse, type StreamMessage, type TaskResult, type WireRequest, type WorkerBooted, type WorkerHello, type WorkerSpec } from '../../runtime/protocol.ts';
import type { AppConfig } from '../config.ts';
import { IdTable } from '../id-table.ts';
import { workerResourceLimits } from '../worker-resource-limits.ts';
import { PiscinaAdapter, type ThreadView } from './piscina-adapter.ts';
import { Placement, type PlacementOwner } from './placement.ts';
import * as prefetch from './prefetch.ts';
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
/** How long a booting native interpreter asked to unwind has to report its failed import before it is terminated. */
const UNWIND_WAIT_MS = 3000;

/**
 * Requests a busy worker may hold beyond the one it runs when the pool grows and shrinks
 * (--min-workers below --workers): fewer than its MAX_PREFETCH claim cells, so that a
 * second interpreter starts once the first holds 4 requests, not 8.
 */
const PREFETCH_WHEN_GROWING = 3;

export interface WorkerExit {
  workerId: number;
  generation: number;
  reason: ExitReason;
  served: number;
  uptimeMs: number;
}

export interface PoolHooks<O extends PlacementOwner = PlacementOwner> {
  onBooted(pool: WorkerPool<O>, report: BootReport): void;
  onExit(pool: WorkerPool<O>, exit: WorkerExit): void;
  /**
   * The pool took these requests back before they ran (their worker retires or died, the
   * pool closes, or its workers fail to boot), oldest first: hand them out again.
   */
  onTakenBack(pool: WorkerPool<O>, owners: O[]): void;
  /** A task settled: a worker may have room. */
  onRoom(pool: WorkerPool<O>): void;
  /** A worker started (before its interpreter boots): link it to the app's shared store. */
  onStarted?(pool: WorkerPool<O>, hello: WorkerHello): void;
  /** A stuck thread (see {@link STUCK_AFTER_MS}) left the pool, or exited after all. */
  onStuckChange?(pool: WorkerPool<O>): void;
}

export class WorkerPool<O extends PlacementOwner = PlacementOwner> {
  readonly config: AppConfig;
  readonly generation: number;
  readonly #log: Logger;
  readonly #hooks: PoolHooks<O>;
  readonly #piscina: PiscinaAdapter<Placement<O>>;
  readonly #workers = new Map<number, WorkerHandle>();
  /** Workers that did not exit when terminated (blocked in C code): out of the pool, still alive. */
  readonly #stuck = new Map<number, WorkerHandle>();
  /** Requests handed to this generation, by id, until their response is over (or they are taken back). */
  readonly #placements = new IdTable<Placement<O>>();
  readonly #bootWaiters = new Set<() => boolean>();
  /** Workers still importing their app, with the timer of their --boot-timeout (or of its grace). */
  readonly #bootTimers = new Map<WorkerHandle, NodeJS.Timeout>();
  readonly #drainWaiters = new Set<() => boolean>();
  /** Placements that may still run here: handed out, not settled, not taken back. */
  #inFlight = 0;
  /**
   * Requests go over the workers' own ports (below, {@link run}) unless the pool grows and
   * shrinks or is embedded: piscina then has to see every request, or it would find a
   * worker that serves only its port idle and stop it at --idle-timeout (and it starts
   * workers only for requests it queues).
   */
  readonly #offersOnPort: boolean;
  /** Each worker's requests on its port, oldest first: the worker answers them in that order. */
  readonly #posted = new Map<WorkerHandle, Placement<O>[]>();
  /** A post of this turn's requests is scheduled (setImmediate). */
  #flushScheduled = false;
  /** piscina may hold a request in its queue (set when one was left there; cleared once none is). */
  #maybeUnplaced = false;
  #closing: ExitReason | undefined;
  #destroying: Promise<void> | undefined;
  /** Rejects once the pool is destroyed: nothing waits for a boot that will not come. */
  readonly #destroyed: Promise<never>;
  #markDestroyed!: (error: Error) => void;

  constructor(config: AppConfig, generation: number, log: Logger, hooks: PoolHooks<O>) {
    this.config = config;
    this.generation = generation;
    this.#log = log;
    this.#hooks = hooks;
    this.#offersOnPort = !config.inline && config.minWorkers >= config.workers;
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
    this.#piscina = new PiscinaAdapter<Placement<O>>({
      filename: WORKER_ENTRY,
      workerData: spec,
      minThreads: config.minWorkers,
      maxThreads: config.workers,
      concurrentTasksPerWorker: this.#concurrency,
      idleTimeout: config.minWorkers < config.workers ? config.idleTimeout * 1000 : Infinity,
      resourceLimits: workerResourceLimits(config),
      place: (placement, workers) => this.#place(placement, workers),
      onMessage: (message) => this.#onWorkerMessage(message),
      // piscina replaces a worker that fails while idle (an uncaught exception in a timer).
      onIdleError: (error) => this.#log.error({ err: error }, 'a worker failed while idle'),
    });
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
    if (this.#offersOnPort) {
      // Exactly: a booted worker has room now. Else only a worker that boots (or is yet to
      // start) can take more, and the request waits for it in piscina's queue, as before.
      let booting = this.#workers.size < this.config.workers;
      for (const handle of this.#workers.values()) {
        if (!handle.accepts) continue;
        if (!handle.boot) booting = true;
        else if (this.#usageIfRoom(handle) >= 0) return true;
      }
      if (!booting) return false;
    }
    return this.#inFlight < Math.max(1, this.usableWorkers) * this.#concurrency;
  }

  /**
   * Requests one worker holds at once: the one it runs plus MAX_PREFETCH waiting their
   * turn in it, or every admitted one in embedded mode (where they overlap). A pool that
   * grows uses fewer cells: piscina starts another worker only once every worker is full.
   */
  get #concurrency(): number {
    if (this.config.inline) return this.config.maxQueue;
    return 1 + (this.#offersOnPort ? MAX_PREFETCH : PREFETCH_WHEN_GROWING);
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
   * deadline. The pool reports to `owner`: its streams, its result, its failure; or, when
   * the pool takes it back on its own, through {@link PoolHooks.onTakenBack}.
   */
  run(request: WireRequest, owner: O): Placement<O> {
    const placement = new Placement(this, request, owner);
    this.#placements.set(request.id, placement);
    this.#inFlight++;
    if (this.#offersOnPort && this.#postOnPort(placement)) return placement;
    this.#piscina.run(placement).then(
      (outcome) => this.#onSettled(placement, outcome, undefined),
      (error: unknown) => this.#onSettled(placement, undefined, error),
    );
    if (placement.handle === undefined) this.#maybeUnplaced = true;
    return placement;
  }

  /**
   * Requests over the worker's own port, not through piscina (docs/architecture.md,
   * "Requests go over the worker's port"). piscina's run() cost the main thread, for every
   * request, a task record, a promise, a view object per worker, microtasks, an
   * Atomics.notify and a message of its own. Here the least busy booted worker with room
   * gets the request: to run at once if it is idle, else as an offer in a claim cell,
   * exactly as the balancer's (#place). It waits in the worker's outbox until the end of
   * this turn of the event loop, when everything handed out in the turn (the main thread
   * reads many sockets per turn) goes out in one message per worker: one wake-up of the
   * worker, not one per request. The worker answers each on the same port (a `result`
   * stream message), in the order posted. False when no booted worker has room: piscina
   * then queues the request, to hand it to a worker that boots (or to start one).
   */
  #postOnPort(placement: Placement<O>): boolean {
    let target: WorkerHandle | undefined;
    let targetUsage = Infinity;
    for (const handle of this.#workers.values()) {
      if (!handle.boot || !handle.accepts) continue;
      const usage = this.#usageIfRoom(handle);
      if (usage >= 0 && usage < targetUsage) {
        target = handle;
        targetUsage = usage;
        if (usage === 0) break;
      }
    }
    if (!target) return false;
    if (targetUsage > 0) {
      const claim = prefetch.offer(target.control, placement.envelope.id);
      if (claim === undefined) return false;
      placement.envelope.claim = claim;
    }
    placement.handle = target;
    placement.posted = true;
    this.#postedOn(target).push(placement);
    appendPortRequest(target.outbox, placement.envelope);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
    return true;
  }

  /** Post each worker's requests of this turn, in one message per worker. */
  readonly #flush = (): void => {
    this.#flushScheduled = false;
    for (const handle of this.#workers.values()) {
      if (handle.outbox.length === 0) continue;
      // Bodies are copied, not transferred: an offer taken back may be sent again.
      handle.port.postMessage(handle.outbox satisfies PortRequests);
      handle.outbox.length = 0;
    }
  };

  #postedOn(handle: WorkerHandle): Placement<O>[] {
    let posted = this.#posted.get(handle);
    if (!posted) {
      posted = [];
      this.#posted.set(handle, posted);
    }
    return posted;
  }

  /**
   * What a worker holds if it has room for one more request (-1 if it has none): it is
   * idle, or it holds fewer than it may and one of its claim cells is free (a worker that
   * finished its request may not have claimed the next yet).
   */
  #usageIfRoom(handle: WorkerHandle): number {
    const usage = this.#usage(handle);
    // Every request waiting in a claim cell is one the worker holds: with fewer held than
    // cells, one is free (the cells are read only when it matters: this runs per request).
    if (usage < MAX_PREFETCH) return usage;
    return usage < this.#concurrency && prefetch.countWaiting(handle.control) < MAX_PREFETCH ? usage : -1;
  }

  /**
   * Requests a worker holds: piscina's tasks (running, offered, declining) and its port's.
   * A request taken back from the port is not counted while the worker's not-run answer
   * is on its way: its claim cell is free, and nothing else would ever make room for a
   * request piscina queued meanwhile.
   */
  #usage(handle: WorkerHandle, piscinaUsage = this.#piscina.usage(handle.workerId)): number {
    let usage = piscinaUsage;
    const posted = this.#posted.get(handle);
    if (posted) for (let i = 0; i < posted.length; i++) if (posted[i]!.owner !== undefined) usage++;
    return usage;
  }

  /** A worker answered a request posted on its port: the oldest one it holds (it answers in order). */
  #onPortResult(id: number, result: TaskResult | undefined, failure: string | undefined, handle: WorkerHandle): void {
    const placement = this.#posted.get(handle)?.shift();
    if (placement?.envelope.id !== id) {
      this.#log.error({ worker: handle.workerId, requestId: id }, 'a worker answered a request it was not offered on its port; ignored');
      return;
    }
    placement.posted = false;
    this.#onSettled(placement, result, failure === undefined ? undefined : new Error(failure));
    // piscina hands out what it queued only when a task of its own ends or a worker boots:
    // a request it holds while this worker made room comes back, to be posted here.
    if (this.#maybeUnplaced) this.#takeBackUnplacedIfRoom();
  }

  /** Requests piscina queued (no booted worker had room then) go back to their owners once one has room. */
  #takeBackUnplacedIfRoom(): void {
    let unplaced = false;
    for (const placement of this.#placements.values()) if (placement.owner && placement.handle === undefined) unplaced = true;
    this.#maybeUnplaced = unplaced;
    if (!unplaced) return;
    for (const handle of this.#workers.values()) {
      if (handle.boot && handle.accepts && this.#usageIfRoom(handle) >= 0) {
        this.takeBackUnplaced();
        return;
      }
    }
  }

  /** Where a task's answer from piscina (or from a worker's port) lands: the one place a placement settles. */
  #onSettled(placement: Placement<O>, outcome: TaskResult | undefined, error: unknown): void {
    const owner = placement.owner;
    // Taken back already (it left the count then): its answer, not-run or the pool's end, is no one's.
    if (owner !== undefined) {
      this.#inFlight--;
      if (outcome !== undefined && outcome.kind !== 'not-run') {
        this.#noteRetirement(placement, outcome.workerId);
        owner.onResult(outcome);
      } else {
        // Declined by a retiring worker (not-run; its claim cell still holds it: empty it),
        // or its worker died before claiming or starting it: it never ran, it runs elsewhere.
        const runsElsewhere = this.#reclaim(placement) || error === undefined;
        placement.owner = undefined;
        this.#placements.delete(placement.envelope.id);
        if (runsElsewhere) this.#hooks.onTakenBack(this, [owner]);
        else owner.onFailed(error);
      }
    }
    this.#notifyDrain();
    this.#hooks.onRoom(this);
  }

  /**
   * piscina's load balancer, for every task it places: an idle worker takes it to run
   * now; else the least busy worker that has room gets it as an offer (prefetch), in a
   * claim cell of its control block. Null keeps the task in piscina's queue.
   */
  #place<W extends ThreadView>(placement: Placement<O>, workers: readonly W[]): W | null {
    if (placement.owner === undefined) {
      // Withdrawn from piscina's queue: any worker with room answers not-run for it, and piscina's queue moves on.
      return workers.find((worker) => {
        const handle = this.#workers.get(worker.id);
        return handle?.boot && this.#usage(handle, worker.currentUsage) < this.#concurrency;
      }) ?? null;
    }
    if (this.config.inline) {
      const worker = workers.find((candidate) => candidate.currentUsage < this.#concurrency && (this.#workers.get(candidate.id)?.accepts ?? true)) ?? null;
      if (worker) placement.handle = this.#workers.get(worker.id);
      return worker;
    }
    let leastBusy: { worker: W; handle: WorkerHandle; usage: number } | undefined;
    for (const worker of workers) {
      const handle = this.#workers.get(worker.id);
      if (!handle?.accepts) continue;
      // The view piscina hands the balancer: a worker it has not announced yet may hold tasks.
      const usage = this.#usage(handle, worker.currentUsage);
      if (usage === 0) {
        placement.handle = handle;
        return worker;
      }
      if (handle.boot && usage < this.#concurrency && (!leastBusy || usage < leastBusy.usage)) leastBusy = { worker, handle, usage };
    }
    if (!leastBusy) return null;
    const claim = prefetch.offer(leastBusy.handle.control, placement.envelope.id);
    if (claim === undefined) return null;
    placement.envelope.claim = claim;
    PiscinaAdapter.keepBody(placement);
    placement.handle = leastBusy.handle;
    return leastBusy.worker;
  }

  /**
   * Take back a request that has not run: one still in piscina's queue (withdrawn: any
   * worker answers not-run for it), or one offered to a busy worker (its claim cell
   * decides). True when taken back; false when it runs, or ran.
   */
  withdraw(placement: Placement<O>): boolean {
    if (placement.owner === undefined) return true;
    if (placement.handle === undefined) {
      placement.envelope.claim = WITHDRAWN;
      // Posted later to a worker that declines it: its body stays with its owner.
      PiscinaAdapter.keepBody(placement);
      this.#detach(placement);
      return true;
    }
    if (!this.#reclaim(placement)) return false;
    this.#detach(placement);
    return true;
  }

  /** Swap an offered request out of its claim cell: true when the worker had not claimed it. */
  #reclaim(placement: Placement<O>): boolean {
    const { claim, id } = placement.envelope;
    if (claim === undefined || claim === WITHDRAWN || !placement.handle) return false;
    return prefetch.takeBack(placement.handle.control, id, claim);
  }

  /** The request will not run here: it leaves the count, and its answer is no one's. */
  #detach(placement: Placement<O>): void {
    placement.owner = undefined;
    this.#inFlight--;
    // It may run in another generation now: a closing pool must not wait for it.
    this.#placements.delete(placement.envelope.id);
    this.#notifyDrain();
  }

  /**
   * Every request that waits for a worker of this generation to take it (the workers
   * are booting, or failing to boot) goes back to its owner, to run elsewhere or be
   * refused: nothing should wait on a boot that may never succeed.
   */
  takeBackUnplaced(): void {
    const owners: O[] = [];
    for (const placement of this.#placements.values()) {
      const owner = placement.owner;
      if (owner && placement.handle === undefined && this.withdraw(placement)) owners.push(owner);
    }
    this.#handBack(owners);
  }

  /**
   * While a worker is idle and another holds offered requests, take the oldest offer
   * back (its owner hands it out again, to the idle one); undefined when there is none
   * to move.
   */
  takeBackOldestOffer(): O | undefined {
    // Called after every result: the common answer (no offer waits) allocates nothing.
    if (!this.hasIdleWorker || this.offered === 0) return undefined;
    let oldest: Placement<O> | undefined;
    for (const handle of this.#workers.values()) {
      for (const id of prefetch.waitingIds(handle.control)) {
        const placement = this.#placements.get(id);
        if (placement?.owner && (!oldest || placement.owner.order < oldest.owner!.order)) oldest = placement;
      }
    }
    const owner = oldest?.owner;
    return oldest && this.withdraw(oldest) ? owner : undefined;
  }

  /** Requests offered to busy workers and not yet claimed: they are waiting, as if queued. */
  get offered(): number {
    let waiting = 0;
    for (const handle of this.#workers.values()) waiting += prefetch.countWaiting(handle.control);
    return waiting;
  }

  /** A booted worker that takes requests and holds none. */
  get hasIdleWorker(): boolean {
    for (const handle of this.#workers.values()) if (handle.boot && handle.accepts && this.#usage(handle) === 0) return true;
    return false;
  }

  /** A worker that goes: the requests waiting in its claim cells run elsewhere. */
  #takeBackOffers(handle: WorkerHandle): void {
    const owners: O[] = [];
    for (const id of prefetch.waitingIds(handle.control)) {
      const placement = this.#placements.get(id);
      const owner = placement?.owner;
      if (owner && placement.handle === handle && this.withdraw(placement)) owners.push(owner);
    }
    this.#handBack(owners);
  }

  #handBack(owners: O[]): void {
    if (owners.length === 0) return;
    owners.sort((a, b) => a.order - b.order);
    this.#hooks.onTakenBack(this, owners);
  }

  /** The request is over on the main side: forget it, retire its worker if due. */
  release(placement: Placement<O>): void {
    if (this.#placements.get(placement.envelope.id) === placement) this.#placements.delete(placement.envelope.id);
    this.#notifyDrain();
    if (placement.retiresWorker) {
      placement.retiresWorker = false;
      if (placement.handle) this.terminateWorker(placement.handle.workerId);
    }
  }

  /**
   * The worker running this request now, if it does: the placement knows its worker, and
   * the worker's REQUEST_ID says whether it has started it (a signal for a request that
   * has not started would hit the one before it). Embedded mode: every request in flight
   * runs in the one interpreter.
   */
  runningOn(placement: Placement<O>): WorkerHandle | undefined {
    const handle = placement.handle;
    if (!handle) return undefined;
    if (this.config.inline) return this.#placements.get(placement.envelope.id) === placement ? handle : undefined;
    return handle.requestId === placement.envelope.id ? handle : undefined;
  }

  /**
   * Hard stop (--timeout-grace over): terminate the worker the request was handed to
   * (piscina replaces it); if its thread does not exit, it is stuck in C code.
   */
  terminateRun(placement: Placement<O>): void {
    const handle = placement.handle;
    if (!handle || this.#workers.get(handle.workerId) !== handle) return;
    this.#terminateOrCountStuck(handle, 'timeout');
  }

  /** Terminate a worker that may be blocked in C code: if its thread has not exited STUCK_AFTER_MS later, it is stuck. */
  #terminateOrCountStuck(handle: WorkerHandle, reason: ExitReason): void {
    // Python that caught its interrupt and went on would hold the thread like C code does.
    handle.unwind();
    this.terminateWorker(handle.workerId, reason);
    setTimeout(() => this.#unlessExited(handle), STUCK_AFTER_MS).unref();
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
    const running = this.#placements.get(handle.requestId);
    if (running) running.retiresWorker = true;
    else this.terminateWorker(workerId);
  }

  /** Stop one worker now (piscina starts a replacement when the pool needs one). */
  terminateWorker(workerId: number, reason?: ExitReason): void {
    const handle = this.#workers.get(workerId);
    if (!handle) return;
    if (reason) handle.exitReason ??= reason;
    this.#piscina.terminate(workerId);
  }

  /**
   * A worker terminated at its timeout that has not exited: its thread is blocked in C
   * code, where neither the interrupt nor the termination reaches it, and nothing can end
   * it short of ending the process. Count it as stuck and take it out of the pool
   * (piscina then fails its tasks: the timed-out one, and offers, which run elsewhere);
   * it stays listed, as stuck, until it exits on its own, if ever.
   */
  #unlessExited(handle: WorkerHandle): void {
    const thread = this.#piscina.thread(handle.workerId);
    if (this.#workers.get(handle.workerId) !== handle || !thread) return;
    handle.exitReason = 'stuck';
    this.#log.error({ worker: handle.workerId, generation: this.generation, afterMs: STUCK_AFTER_MS },
      'a worker thread is stuck in C code and cannot be ended: it leaves the pool (a replacement starts unless the pool is closing) and stays until the process ends');
    // #onExit runs from the emitted event (this pool's own 'exit' listener).
    this.#piscina.abandon(thread, () => this.#onExit(handle, 1));
    this.#stuck.set(handle.workerId, handle);
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
    // The answers still to come arrive on the workers' ports, which are unref'd (an idle
    // pool must not hold the process up), as piscina unrefs a worker with no task of its
    // own: ref them until the pool is destroyed, which closes them. Without that, a
    // server shutting down whose last connection had just closed could see its event loop
    // empty while a request's result was still on its way, and exit 0 mid-shutdown
    // ("stopped" never logged; seen once in CI, test/server/signals.test.ts).
    for (const handle of this.#workers.values()) handle.port.ref();
    await new Promise<void>((resolve) => {
      const check = () => {
        if (!this.#destroying && (this.#inFlight > 0 || this.#placements.size > 0)) return false;
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
    if (this.#drainWaiters.size === 0) return;
    for (const waiter of [...this.#drainWaiters]) if (waiter()) this.#drainWaiters.delete(waiter);
  }

  /** The worker set RETIRING before returning: replace it once this response is done. */
  #noteRetirement(placement: Placement<O>, workerId: number): void {
    const handle = this.#workers.get(workerId);
    if (!handle) return;
    const retiring = handle.retireReason;
    if (retiring === undefined) return;
    handle.exitReason ??= retiring;
    this.#takeBackOffers(handle);
    if (this.config.inline) {
      // Embedded mode: the one interpreter may still serve others; stop it once all are done.
      const whenIdle = () => {
        if (this.#inFlight > 0 || this.#placements.size > 0) return false;
        this.terminateWorker(workerId);
        return true;
      };
      if (!whenIdle()) this.#drainWaiters.add(whenIdle);
      return;
    }
    if (this.#placements.get(placement.envelope.id) === placement) placement.retiresWorker = true;
    else this.terminateWorker(workerId);
  }

  #onWorkerMessage(message: unknown): void {
    const typed = message as WorkerHello | WorkerBooted | undefined;
    if (typed?.type === 'interpool:hello') this.#onHello(typed);
    else if (typed?.type === 'interpool:booted') {
      const handle = this.#workers.get(typed.report.workerId);
      if (handle) handle.reported = true;
      this.#onBooted(typed.report);
    }
  }

  #onHello(hello: WorkerHello): void {
    const handle = new WorkerHandle(hello);
    handle.port.on('message', (stream: StreamMessage | PortResponse) => {
      if (!this.#onPortMessage(stream, handle)) return;
      // What else the worker posted meanwhile is read now, without an event each (as
      // piscina reads its results): under load that is most of its messages. But a
      // streamed response's messages each get an event, as before: Node holds a
      // response's first write until the next tick, and an `error` read in the same turn
      // would abort the connection before the chunks the client was to get.
      this.#readPosted(handle, true);
    });
    handle.port.unref();
    this.#piscina.thread(handle.workerId)?.once('exit', (code: number) => this.#onExit(handle, code));
    this.#workers.set(handle.workerId, handle);
    this.#watchBoot(handle);
    this.#hooks.onStarted?.(this, hello);
  }

  /**
   * --boot-timeout: an interpreter still importing its app by then is interrupted, as a
   * request at its --timeout is (Python: interpool.RequestTimeout natively, raised in the
   * import, which fails as any import does: a boot failure with its traceback, retried
   * with back-off). One that has not reported within --timeout-grace more (Pyodide, which
   * takes the interrupt only once booted; JavaScript; C code) counts as a boot failure
   * and is terminated, and is stuck if its thread does not exit.
   */
  #watchBoot(handle: WorkerHandle): void {
    const seconds = this.config.bootTimeout;
    if (seconds <= 0) return;
    const stillBooting = () => handle.boot === undefined && this.#workers.get(handle.workerId) === handle;
    const timer = setTimeout(() => {
      if (!stillBooting()) return;
      handle.interruptBoot();
      const grace = setTimeout(() => {
        if (!stillBooting()) return;
        // Python that caught the interrupt and went on is made to unwind first (native):
        // its import then fails and reports as any boot failure does. A worker terminated
        // before it reports is one piscina never replaces (it takes it for a worker that
        // cannot start), and the app would answer 503 until the server restarts.
        handle.unwind();
        const last = setTimeout(() => {
          this.#bootTimers.delete(handle);
          if (!stillBooting()) return;
          this.#onBooted({
            workerId: handle.workerId, kind: this.config.kind, version: '', stages: [],
            error: { code: 'APP_BOOT_FAILED', message: `${this.config.file}: did not finish importing within --boot-timeout (${seconds} s), nor stop within --timeout-grace once interrupted` },
          });
          this.#terminateOrCountStuck(handle, 'boot-failed');
        }, UNWIND_WAIT_MS);
        last.unref();
        this.#bootTimers.set(handle, last);
      }, this.config.timeoutGrace * 1000);
      grace.unref();
      this.#bootTimers.set(handle, grace);
    }, seconds * 1000);
    timer.unref();
    this.#bootTimers.set(handle, timer);
  }

  #stopWatchingBoot(handle: WorkerHandle): void {
    clearTimeout(this.#bootTimers.get(handle));
    this.#bootTimers.delete(handle);
  }

  #onBooted(report: BootReport): void {
    const handle = this.#workers.get(report.workerId);
    if (!handle || handle.boot) return;
    this.#stopWatchingBoot(handle);
    // A boot's unwinding, if it was asked for, is over: the slot is the next request's.
    handle.clearUnwind();
    handle.boot = report;
    for (const waiter of [...this.#bootWaiters]) if (waiter()) this.#bootWaiters.delete(waiter);
    this.#hooks.onBooted(this, report);
  }

  /** One message from a worker's port; true when it was a request's answer (more may be read in this turn). */
  #onPortMessage(message: StreamMessage | PortResponse, handle: WorkerHandle): boolean {
    if (Array.isArray(message)) {
      const [id, status, headers, body] = message;
      this.#onPortResult(id, { kind: 'response', workerId: handle.workerId, status, headers, body }, undefined, handle);
      return true;
    }
    this.#onStreamMessage(message, handle);
    return message.type === 'result';
  }

  #onStreamMessage(message: StreamMessage, handle: WorkerHandle): void {
    if (message.type === 'log') {
      // What the worker printed (runtime/worker-output.ts): stdout at info, stderr at warn.
      if (message.stream === 'stdout') this.#log.info({ worker: handle.workerId, stream: 'stdout' }, message.line);
      else this.#log.warn({ worker: handle.workerId, stream: message.stream ?? 'wsgi.errors' }, message.line);
      return;
    }
    if (message.type === 'result') {
      this.#onPortResult(message.id, message.result, message.failure, handle);
      return;
    }
    this.#placements.get(message.id)?.owner?.onStream(message, handle.workerId);
  }

  /**
   * Handle the messages waiting on a worker's port, without an event each; with
   * `stopAtStream`, only up to and including the first that is not a request's answer.
   */
  #readPosted(handle: WorkerHandle, stopAtStream: boolean): void {
    for (let entry = receiveMessageOnPort(handle.port); entry !== undefined; entry = receiveMessageOnPort(handle.port)) {
      if (!this.#onPortMessage(entry.message as StreamMessage | PortResponse, handle) && stopAtStream) return;
    }
  }

  #onExit(handle: WorkerHandle, code: number): void {
    if (this.#stuck.delete(handle.workerId)) {
      // Counted when it got stuck: whatever held it in C code returned after all.
      this.#log.warn({ worker: handle.workerId, generation: this.generation }, 'a stuck worker thread exited after all');
      this.#hooks.onStuckChange?.(this);
      return;
    }
    this.#workers.delete(handle.workerId);
    this.#stopWatchingBoot(handle);
    // What the worker posted before it ended may still wait on its port: the exit and the
    // port's messages come on different channels, and a busy main thread can see the exit
    // first. An answer the worker finished reaches its client, not WORKER_DIED.
    this.#readPosted(handle, false);
    handle.port.close();
    const diedMidRequest = handle.requestId !== 0;
    // Its requests on its port that it never started run elsewhere: it starts them in the
    // order they were posted, so those after the last one it started never reached the
    // app (an idle worker that fails between being handed a request and reading it, say).
    // The one it started, if still here, fails (WORKER_DIED): it may have had effects.
    const posted = this.#posted.get(handle);
    this.#posted.delete(handle);
    if (posted) {
      const started = posted.findIndex((placement) => placement.envelope.id === handle.lastStarted);
      const died = new Error(`worker exited with code: ${code}`);
      posted.forEach((placement, index) => this.#onSettled(placement, undefined, index > started ? undefined : died));
    }
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
    if (!handle.reported && (reason === 'boot-failed' || reason === 'stuck') && this.#closing === undefined) this.#startReplacement();
  }

  /**
   * piscina starts no worker again once one has ended before it was ready (it takes the
   * app for one that cannot start): a boot this pool ended at --boot-timeout is such an
   * end, and the app answered 503 from then on, until the server restarted. A task that
   * no one owns makes piscina start one (it spawns for a task no worker can take); once
   * booted, the worker answers it not-run.
   */
  #startReplacement(): void {
    this.#piscina.run(new Placement<O>(this, { id: 0, cgi: '', urlScheme: 'http', claim: WITHDRAWN }, undefined)).catch(() => undefined);
  }
}
