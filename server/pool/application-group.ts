/**
 * One app: its interpreters (the current WorkerPool generation), the bounded queue in
 * front of them, boot failures retried with back-off, reload without downtime, and the
 * count of every interpreter exit by reason. The same supervisor serves every kind.
 *
 * Nothing here waits on a boot it does not need: requests are refused at once while the
 * app fails to boot, a reload takes effect as soon as its new generation is ready (old
 * generations drain on their own), and a close stops booting interpreters and pending
 * retries instead of waiting for them.
 */
import type { Logger } from 'pino';
import { listNativeBuilds } from '../../native/builds.ts';
import type { BootReport, ErrorData, WireRequest, WorkerHello } from '../../runtime/protocol.ts';
import { AdmissionQueue } from './admission-queue.ts';
import { hintForBootFailure, needsNewProcess } from '../boot-hints.ts';
import type { AppConfig } from '../config.ts';
import { channels, type AppReloaded, type InterpreterBooted, type InterpreterExited, type ProcessWanted, type ThreadsStuck } from '../diagnostics.ts';
import { InterpoolError } from '../errors.ts';
import type { SharedStore, SharedStoreStats } from '../shared-store/store.ts';
import { WorkerLink } from '../shared-store/worker-link.ts';
import { RequestTicket, type RequestReceiver, type Run, type TicketLine } from './request-ticket.ts';
import { EXIT_REASONS, WorkerPool, type ExitReason, type PoolHooks, type WorkerExit, type WorkerView } from './worker-pool.ts';

export { EXIT_REASONS, type ExitReason, type WorkerExit, type WorkerView } from './worker-pool.ts';
export type { RequestReceiver, RequestTicket, StreamReceiver } from './request-ticket.ts';

/** Boot retries wait 1 s, 2 s, 4 s ... up to this. */
const MAX_BOOT_BACKOFF_MS = 60_000;

export interface ReloadOutcome {
  ok: boolean;
  error?: string;
}

export interface GroupStats {
  name: string;
  kind: string;
  file: string;
  generation: number;
  workers: { min: number; max: number; now: number };
  queue: number;
  inFlight: number;
  available: boolean;
  exits: Record<ExitReason, number>;
  /** Threads stuck in C code (any generation): out of the pool, alive until the process ends. */
  stuck: number;
  interpreters: WorkerView[];
  /** The latest boot failure of the current generation, until an interpreter boots again. */
  bootFailure: BootFailure | null;
  /** The latest reload that failed to boot (the running interpreters kept serving), until one succeeds. */
  reloadFailure: Pick<BootFailure, 'message' | 'detail' | 'fix' | 'at'> | null;
  /** The app's shared store (docs/shared-store.md): keys, bytes, operations a second. */
  sharedStore: SharedStoreStats | null;
}

/** A failed boot as the admin shows it (never sent to clients: `detail` is the traceback). */
export interface BootFailure {
  message: string;
  detail: string | null;
  /** What to do about it, when the cause is a known one (boot-hints.ts). */
  fix: string | null;
  /** Epoch ms of the failure, and of the retry it scheduled. */
  at: number;
  nextRetryAt: number;
  /** Failed boots in a row. */
  attempts: number;
}

export class ApplicationGroup {
  readonly config: AppConfig;
  readonly #log: Logger;
  readonly #queue: AdmissionQueue<RequestTicket>;
  readonly #exits = Object.fromEntries(EXIT_REASONS.map((reason) => [reason, 0])) as Record<ExitReason, number>;
  readonly #hooks: PoolHooks<RequestTicket>;
  /** What each request's ticket sees of this group. */
  readonly #line: TicketLine;
  #pool: WorkerPool<RequestTicket>;
  #generation = 1;
  #nextRequestId = 1;
  /** Tickets admitted so far: each one's admission order. */
  #admitted = 0;
  #bootFailures = 0;
  /** An interpreter of this app booted in this process once (see needsNewProcess). */
  #servedInThisProcess = false;
  #lastBootError: ErrorData | undefined;
  #bootFailure: BootFailure | null = null;
  #reloadFailure: GroupStats['reloadFailure'] = null;
  /** The reload booting its new generation now. */
  #reloading: Promise<ReloadOutcome> | undefined;
  /** The one reload asked for meanwhile: it starts when the current one is done; later asks join it. */
  #nextReload: Promise<ReloadOutcome> | undefined;
  /** The generation a reload is booting: a close stops it. */
  #incoming: WorkerPool<RequestTicket> | undefined;
  /** Older generations finishing their requests after a reload. */
  readonly #draining = new Map<WorkerPool<RequestTicket>, Promise<void>>();
  /** Pending boot retries: the failed worker each replaces, and when. */
  readonly #retries = new Map<number, { timer: NodeJS.Timeout; at: number }>();
  #closed = false;
  /** The app's shared store: the group's, so that it outlives every generation of workers. */
  readonly #sharedStore: SharedStore;
  readonly #storeLinks = new Map<number, WorkerLink>();
  /** Generations (the current one, or closed ones) holding threads stuck in C code. */
  readonly #stuckPools = new Set<WorkerPool<RequestTicket>>();

  constructor(config: AppConfig, log: Logger, sharedStore: SharedStore) {
    this.config = config;
    this.#log = log.child({ app: config.name });
    this.#queue = new AdmissionQueue(config.maxQueue, (ticket) => ticket.order);
    this.#sharedStore = sharedStore;
    this.#line = {
      limits: config,
      log: this.#log,
      run: (ticket): Run => this.#pool.run(ticket.envelope, ticket),
      dequeue: (ticket) => { this.#queue.remove(ticket); },
    };
    this.#hooks = {
      onBooted: (pool, report) => this.#onBooted(pool, report),
      onExit: (pool, exit) => this.#onExit(pool, exit),
      onTakenBack: (_pool, tickets) => this.#requeue(tickets),
      onRoom: (pool) => { if (pool === this.#pool) this.pump(); },
      onStarted: (_pool, hello) => this.#linkSharedStore(hello),
      onStuckChange: (pool) => {
        if (pool.stuckThreads > 0) this.#stuckPools.add(pool);
        else this.#stuckPools.delete(pool);
        channels.threadsStuck.publish({ app: this.config.name, stuck: this.stuckThreads } satisfies ThreadsStuck);
      },
    };
    this.#pool = new WorkerPool(config, this.#generation, this.#log, this.#hooks);
  }

  get queueSize(): number {
    return this.#queue.size;
  }

  /** This app's threads stuck in C code, every generation. */
  get stuckThreads(): number {
    let stuck = 0;
    for (const pool of this.#stuckPools) stuck += pool.stuckThreads;
    return stuck;
  }

  /**
   * Wait for the first interpreter to report. A callable that is not there is a
   * configuration mistake and stops the server (exit 2); an app that fails to import
   * keeps the server up: its requests get 503 while boots are retried with back-off.
   */
  async start(): Promise<BootReport> {
    const report = await this.#pool.firstBoot();
    if (report.error?.code === 'APP_CALLABLE_MISSING') {
      await this.close();
      throw new InterpoolError('INTERPOOL_ERR_APP_BOOT', [`app ${this.config.name}: ${report.error.message}`]);
    }
    return report;
  }

  /** Allocate the id that ties a request's stream messages to it. */
  nextRequestId(): number {
    const id = this.#nextRequestId;
    this.#nextRequestId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  /**
   * Admit a request: run it now, queue it, or refuse it without touching an
   * interpreter (queue full: 503; app failing to boot: 503). The ticket answers
   * `receiver` from then on: the result, or the error that ends the request.
   */
  submit(envelope: WireRequest, receiver: RequestReceiver): RequestTicket {
    if (this.#closed) throw new InterpoolError('INTERPOOL_ERR_SHUTTING_DOWN');
    if (this.#failing) throw this.#unavailable();
    // Requests offered to busy workers wait as queued ones do, and count against --max-queue.
    const waiting = this.#pool.offered;
    const runsNow = this.#queue.size === 0 && this.#pool.hasCapacity && (this.#pool.hasIdleWorker || waiting < this.config.maxQueue);
    if (!runsNow && this.#queue.size + waiting >= this.config.maxQueue) {
      throw new InterpoolError('INTERPOOL_ERR_QUEUE_FULL', [this.config.name, this.config.maxQueue]);
    }
    const ticket = new RequestTicket(this.#line, envelope, receiver, ++this.#admitted);
    if (runsNow) ticket.start();
    else {
      this.#queue.push(ticket, waiting);
      ticket.queued();
    }
    return ticket;
  }

  /**
   * Start queued requests while the current generation has room. Then, while a worker
   * is idle and another holds offered requests, move the oldest offer to the idle one:
   * taken back, it is queued first and started at once. Each turn takes one offer back,
   * so the loop ends.
   */
  pump(): void {
    if (this.#closed || this.#failing) return;
    for (;;) {
      while (this.#queue.size > 0 && this.#pool.hasCapacity) this.#queue.shift()!.start();
      if (this.#queue.size > 0) return;
      const moved = this.#pool.takeBackOldestOffer();
      if (!moved) return;
      moved.queued();
      this.#queue.putBack(moved);
    }
  }

  /**
   * Requests taken back before they ran (from a busy or retiring worker, or from a
   * generation that closes or fails to boot): queued again in admission order, ahead of
   * later ones, then pumped; or refused, if the app cannot serve them any more.
   */
  #requeue(tickets: RequestTicket[]): void {
    for (const ticket of tickets) {
      ticket.queued();
      if (this.#closed) ticket.refuse(new InterpoolError('INTERPOOL_ERR_SHUTTING_DOWN'));
      else if (this.#failing) ticket.refuse(this.#unavailable());
      else this.#queue.putBack(ticket);
    }
    this.pump();
  }

  /**
   * Reload without downtime: boot a new generation from the current files; only once
   * all its interpreters are ready do new requests go to it, while the old generation
   * finishes its in-flight requests and exits. If the new code fails to boot, the old
   * interpreters keep serving and the failure is reported.
   */
  /**
   * The returned outcome settles once this reload took effect (its new generation
   * serves) or failed; the old generation's drain does not hold it up. The last reload
   * asked for always wins: one asked for while another boots is queued and starts as
   * soon as that one is done (so it loads the files as they are then), and every
   * reload asked for meanwhile joins that queued one.
   */
  reload(): Promise<ReloadOutcome> {
    if (this.#nextReload) return this.#nextReload;
    if (!this.#reloading) return this.#startReload();
    this.#log.info('a reload is under way: this one follows as soon as its new generation serves');
    const next = this.#reloading.then(() => {
      this.#nextReload = undefined;
      return this.#startReload();
    });
    this.#nextReload = next;
    return next;
  }

  #startReload(): Promise<ReloadOutcome> {
    const running = this.#reloadOnce().then((outcome) => {
      channels.appReloaded.publish({ app: this.config.name, ...outcome } satisfies AppReloaded);
      return outcome;
    });
    this.#reloading = running;
    void running.then(() => { if (this.#reloading === running) this.#reloading = undefined; });
    return running;
  }

  async #reloadOnce(): Promise<ReloadOutcome> {
    const shuttingDown = { ok: false, error: 'the server is shutting down' };
    if (this.#closed) return shuttingDown;
    const next = new WorkerPool(this.config, this.#generation + 1, this.#log, this.#hooks);
    this.#incoming = next;
    try {
      await next.allBooted();
    } catch (failure) {
      await next.destroy('reload');
      if (this.#closed) return shuttingDown;
      const message = (failure as BootReport).error?.message ?? String(failure);
      const fix = this.#fixFor(message);
      this.#log.error({ detail: (failure as BootReport).error?.detail, ...(fix ? { fix } : {}) }, `reload failed, the running interpreters keep serving: ${message}${fix ? `; fix: ${fix}` : ''}`);
      this.#reloadFailure = { message, detail: (failure as BootReport).error?.detail ?? null, fix, at: Date.now() };
      return { ok: false, error: message };
    } finally {
      this.#incoming = undefined;
    }
    if (this.#closed) {
      await next.destroy('shutdown');
      return shuttingDown;
    }
    const old = this.#pool;
    this.#generation = next.generation;
    this.#pool = next;
    this.#bootFailures = 0;
    this.#bootFailure = null;
    this.#reloadFailure = null;
    this.#lastBootError = undefined;
    // The old generation's pending retries go with it.
    this.#cancelRetries();
    this.pump();
    this.#log.info({ generation: next.generation }, 'reloaded: new interpreters serve, the old ones finish their requests');
    // Its drain (a long stream may hold it for minutes) holds up neither this outcome
    // nor the next reload: several old generations may drain at once.
    const drained = old.close('reload').then(
      () => { this.#draining.delete(old); },
      (error: unknown) => { this.#draining.delete(old); this.#log.error({ err: error, generation: old.generation }, 'closing an old generation failed'); },
    );
    this.#draining.set(old, drained);
    return { ok: true };
  }

  stats(): GroupStats {
    const interpreters = this.#pool.workers();
    const now = interpreters.length;
    // Old generations still finishing their requests after a reload are listed too (as
    // "draining"), with their requests in flight: a long request, or one blocked in C
    // under --timeout 0, stays visible until it ends.
    let inFlight = this.#pool.inFlight;
    for (const old of this.#draining.keys()) {
      interpreters.push(...old.workers());
      inFlight += old.inFlight;
    }
    for (const pool of this.#stuckPools) interpreters.push(...pool.stuckWorkers());
    return {
      name: this.config.name,
      kind: this.config.kind,
      file: this.config.file,
      generation: this.#generation,
      workers: { min: this.config.minWorkers, max: this.config.workers, now },
      queue: this.#queue.size + this.#pool.offered,
      inFlight,
      available: !this.#failing,
      exits: { ...this.#exits },
      stuck: this.stuckThreads,
      interpreters,
      bootFailure: this.#bootFailure,
      reloadFailure: this.#reloadFailure,
      sharedStore: this.#sharedStore.stats(),
    };
  }

  /**
   * Recycle one interpreter by hand (the dashboard's action): it finishes the request it
   * is serving, then a fresh one replaces it. False if it is unknown.
   */
  recycle(workerId: number): boolean {
    if (!this.#pool.workers().some((worker) => worker.workerId === workerId)) return false;
    this.#pool.retireWorker(workerId, 'recycled');
    return true;
  }

  /**
   * Finish in-flight requests and stop every interpreter. What is not running yet is
   * refused (503), and nothing waits for a boot: a pending retry is cancelled, booting
   * interpreters (a retry's, a reload's) are terminated.
   */
  async close(): Promise<void> {
    this.#stopAdmitting();
    await Promise.all([
      this.#incoming?.destroy('shutdown'),
      this.#pool.close('shutdown'),
      ...this.#draining.values(),
    ]);
    await this.#sharedStore.close();
  }

  /** Stop every interpreter now, in-flight requests included. */
  async destroy(): Promise<void> {
    this.#stopAdmitting();
    await Promise.all([this.#incoming, this.#pool, ...this.#draining.keys()].map((pool) => pool?.destroy('shutdown')));
    await this.#sharedStore.close();
  }

  #stopAdmitting(): void {
    this.#closed = true;
    this.#cancelRetries();
    this.#queue.drain((ticket) => ticket.refuse(new InterpoolError('INTERPOOL_ERR_SHUTTING_DOWN')));
  }

  #cancelRetries(): void {
    for (const { timer } of this.#retries.values()) clearTimeout(timer);
    this.#retries.clear();
  }

  /**
   * Every interpreter of the current generation that reported failed to boot, and none
   * serves: requests are refused at once, also while a retry boots (it may fail again).
   */
  get #failing(): boolean {
    return this.#bootFailures > 0 && !this.#pool.healthy;
  }

  /** The 503 of an app failing to boot; Retry-After says when the next attempt is. */
  #unavailable(): InterpoolError {
    const error = new InterpoolError('INTERPOOL_ERR_APP_UNAVAILABLE', [this.config.name, 'it failed to boot and is being retried (see the server log)']);
    let next = Infinity;
    for (const { at } of this.#retries.values()) next = Math.min(next, at);
    // No retry pending: one is booting now.
    error.retryAfter = next === Infinity ? 1 : Math.max(1, Math.ceil((next - Date.now()) / 1000));
    return error;
  }

  /** The way out of a boot failure with a known cause, e.g. a module this Python removed. */
  #fixFor(message: string): string | null {
    if (this.config.kind !== 'python') return null;
    const python = String(this.config.settings.python ?? '');
    return hintForBootFailure(message, { python, ...(python === 'native' ? { nativeBuilds: listNativeBuilds() } : {}) }) ?? null;
  }

  #onBooted(pool: WorkerPool<RequestTicket>, report: BootReport): void {
    channels.interpreterBooted.publish({ app: this.config.name, generation: pool.generation, report } satisfies InterpreterBooted);
    if (pool !== this.#pool) return;
    if (!report.error) {
      if (this.#bootFailures > 0) this.#log.info({ worker: report.workerId, attempts: this.#bootFailures }, 'app booted again after failing');
      this.#bootFailures = 0;
      this.#lastBootError = undefined;
      this.#bootFailure = null;
      this.#servedInThisProcess = true;
      this.#log.info({ worker: report.workerId, generation: pool.generation, version: report.version, stages: report.stages }, 'interpreter booted');
      for (const note of report.notes ?? []) this.#log.warn({ worker: report.workerId }, note);
      this.pump();
      return;
    }
    this.#bootFailures++;
    const delay = Math.min(MAX_BOOT_BACKOFF_MS, 1000 * 2 ** (this.#bootFailures - 1));
    const changed = report.error.message !== this.#lastBootError?.message;
    this.#lastBootError = report.error;
    const fix = this.#fixFor(report.error.message);
    this.#bootFailure = { message: report.error.message, detail: report.error.detail ?? null, fix, at: Date.now(), nextRetryAt: Date.now() + delay, attempts: this.#bootFailures };
    // The traceback once per distinct failure; then one line per retry step.
    this.#log.error(
      { worker: report.workerId, attempt: this.#bootFailures, retryInMs: delay, ...(fix ? { fix } : {}), ...(changed ? { detail: report.error.detail } : {}) },
      `app failed to boot: ${report.error.message}; ${fix ? `fix: ${fix}; ` : ''}retrying in ${delay / 1000} s`,
    );
    // An extension that loads in one interpreter per process, after this process served
    // the app: no new interpreter here will import it, only a new process can
    // (process-replacement.ts; --processes replaces this one).
    if (this.#servedInThisProcess && !pool.healthy && needsNewProcess(report.error.message)) {
      channels.processWanted.publish({ app: this.config.name, reason: 'its C extension loads in one interpreter per process, and its first one here has ended' } satisfies ProcessWanted);
    }
    // The failed worker takes no requests; replacing it after the delay is the retry.
    const { workerId } = report;
    const timer = setTimeout(() => {
      this.#retries.delete(workerId);
      pool.terminateWorker(workerId, 'boot-failed');
    }, delay);
    timer.unref();
    this.#retries.set(workerId, { timer, at: Date.now() + delay });
    // Requests waiting for this generation cannot be served while it keeps failing:
    // those queued here, and those handed to the pool that no worker took.
    if (this.#failing) {
      this.#queue.drain((ticket) => ticket.refuse(this.#unavailable()));
      pool.takeBackUnplaced();
    }
  }

  #linkSharedStore(hello: WorkerHello): void {
    if (!hello.sharedStore) return;
    const link = new WorkerLink(this.#sharedStore, hello.sharedStore, hello.workerId, (error) => this.#log.error({ err: error, worker: hello.workerId }, 'the shared store failed'));
    this.#storeLinks.set(hello.workerId, link);
  }

  #onExit(pool: WorkerPool<RequestTicket>, exit: WorkerExit): void {
    // Whatever the interpreter held in the shared store is free again (locks, waits).
    this.#storeLinks.get(exit.workerId)?.close();
    this.#storeLinks.delete(exit.workerId);
    this.#sharedStore.releaseOwner(exit.workerId);
    this.#exits[exit.reason]++;
    channels.interpreterExited.publish({ app: this.config.name, ...exit } satisfies InterpreterExited);
    const level = exit.reason === 'crashed' || exit.reason === 'stuck' ? 'error' : 'info';
    // A stuck thread has not exited (it cannot): it left the pool.
    const what = exit.reason === 'stuck' ? 'interpreter left the pool: stuck' : `interpreter exited: ${exit.reason}`;
    this.#log[level]({ worker: exit.workerId, generation: exit.generation, reason: exit.reason, served: exit.served, uptimeMs: exit.uptimeMs }, what);
    if (pool === this.#pool) this.pump();
  }
}
