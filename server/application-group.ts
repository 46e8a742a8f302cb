/**
 * One app, one pool: a piscina pool whose every worker thread holds one interpreter
 * running this app and nothing else (two apps never share an isolate).
 *
 * The group turns a request into a task, routes the worker's stream messages back to
 * the request that they belong to, and knows each worker through the hello message it
 * posts at start (its stream port and its shared control block).
 */
import type { MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { Piscina } from 'piscina';
import {
  ControlSlot, NO_REQUEST,
  type BootProbe, type BootReport, type RequestEnvelope, type StreamMessage, type TaskResult, type WorkerHello, type WorkerSpec,
} from '../runtime/protocol.ts';
import type { AppConfig } from './config.ts';

/** The value Pyodide's interrupt buffer takes for SIGINT (raises KeyboardInterrupt). */
const SIGINT = 2;

const WORKER_ENTRY = new URL('../runtime/worker.ts', import.meta.url).href;

/** Receives the stream messages of one request, in order. */
export interface StreamReceiver {
  onStream(message: StreamMessage, workerId: number): void;
}

interface WorkerHandle {
  workerId: number;
  control: Int32Array;
  port: MessagePort;
}

export class ApplicationGroup {
  readonly config: AppConfig;
  readonly #log: Logger;
  readonly #pool: Piscina<RequestEnvelope | BootProbe, TaskResult | BootReport>;
  readonly #workers = new Map<number, WorkerHandle>();
  readonly #receivers = new Map<number, StreamReceiver>();
  #nextRequestId = 1;

  constructor(config: AppConfig, log: Logger) {
    this.config = config;
    this.#log = log.child({ app: config.name });
    const spec: WorkerSpec = { app: config.name, kind: config.kind, file: config.file, callable: config.callable, settings: { ...config.settings } };
    this.#pool = new Piscina({
      filename: WORKER_ENTRY,
      workerData: spec,
      minThreads: config.workers,
      maxThreads: config.workers,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      // Keep each idle worker's event loop running (timers, sockets of the app):
      // piscina's default Atomics.wait would freeze it between tasks.
      atomics: 'async',
    });
    this.#pool.on('message', (message: unknown) => this.#onWorkerMessage(message));
    this.#pool.on('workerDestroy', (worker: { id: number }) => this.#forgetWorker(worker.id));
    // A worker that fails while idle (an uncaught exception in a timer) is replaced by
    // piscina; without a listener the 'error' event would take the server down with it.
    this.#pool.on('error', (error: Error) => this.#log.error({ err: error }, 'worker failed while idle; replacing it'));
  }

  /** Wait for an interpreter to boot and return its report (with the error, if it failed). */
  async probeBoot(): Promise<BootReport> {
    return (await this.#pool.run({ probe: 'boot' })) as BootReport;
  }

  /** Allocate the id that ties a request's stream messages to it. */
  nextRequestId(): number {
    const id = this.#nextRequestId;
    this.#nextRequestId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  /**
   * Run one request; `envelope.body` must own its whole ArrayBuffer, which is
   * transferred to the worker, not copied. The promise settles with the task's result; for a streamed
   * response, the receiver gets `start`, `chunk`... and `end` or `error`.
   */
  async run(envelope: RequestEnvelope, receiver: StreamReceiver, signal: AbortSignal): Promise<TaskResult> {
    this.#receivers.set(envelope.id, receiver);
    try {
      const transferList = envelope.body.byteLength > 0 ? [envelope.body.buffer as ArrayBuffer] : [];
      return (await this.#pool.run(envelope, { signal, transferList })) as TaskResult;
    } catch (error) {
      this.#receivers.delete(envelope.id);
      throw error;
    }
  }

  /** The request is over on the main side: drop its receiver. */
  release(id: number): void {
    this.#receivers.delete(id);
  }

  /**
   * Ask the worker running this request to stop it (client gone, bad headers): the
   * worker stops iterating and calls close(). Returns false when no worker has it yet,
   * i.e. it is still queued.
   */
  cancel(id: number): boolean {
    for (const handle of this.#workers.values()) {
      if (Atomics.load(handle.control, ControlSlot.REQUEST_ID) === id) {
        Atomics.store(handle.control, ControlSlot.CANCEL, id);
        return true;
      }
    }
    return false;
  }

  /**
   * Raise an interrupt in the interpreter running this request (Python: KeyboardInterrupt
   * through Pyodide's interrupt buffer; kinds without one ignore it). Returns false when
   * no worker has the request.
   */
  interrupt(id: number): boolean {
    for (const handle of this.#workers.values()) {
      if (Atomics.load(handle.control, ControlSlot.REQUEST_ID) === id) {
        Atomics.store(handle.control, ControlSlot.CANCEL, id);
        Atomics.store(handle.control, ControlSlot.INTERRUPT, SIGINT);
        return true;
      }
    }
    return false;
  }

  get queueSize(): number {
    return this.#pool.queueSize;
  }

  get workerCount(): number {
    return this.#pool.threads.length;
  }

  async close(): Promise<void> {
    for (const handle of this.#workers.values()) handle.port.close();
    this.#workers.clear();
    await this.#pool.close({ force: true });
  }

  #onWorkerMessage(message: unknown): void {
    const hello = message as WorkerHello;
    if (hello?.type !== 'interpool:hello') return;
    const handle: WorkerHandle = {
      workerId: hello.workerId,
      control: new Int32Array(hello.control),
      port: hello.streamPort as MessagePort,
    };
    handle.port.on('message', (stream: StreamMessage) => this.#onStreamMessage(stream, handle));
    handle.port.unref();
    Atomics.store(handle.control, ControlSlot.CANCEL, NO_REQUEST);
    this.#workers.set(handle.workerId, handle);
  }

  #onStreamMessage(message: StreamMessage, handle: WorkerHandle): void {
    if (message.type === 'log') {
      this.#log.warn({ worker: handle.workerId, stream: 'wsgi.errors' }, message.line);
      return;
    }
    this.#receivers.get(message.id)?.onStream(message, handle.workerId);
  }

  #forgetWorker(workerId: number): void {
    const handle = this.#workers.get(workerId);
    if (!handle) return;
    handle.port.close();
    this.#workers.delete(workerId);
  }
}
