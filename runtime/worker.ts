/**
 * piscina entry point: one worker thread, one interpreter, one app.
 *
 * At start the worker publishes its stream port and shared control block to the main
 * thread (through piscina's 'message' event), then boots its interpreter in named, timed
 * stages. A boot failure is kept, not thrown: every task then reports it as data, so the
 * pool never spins on a worker that cannot start.
 */
import { getHeapStatistics } from 'node:v8';
import { MessageChannel, parentPort, threadId, workerData } from 'node:worker_threads';
import { BootError, BootTimer, bootInterpreter, type Interpreter } from './interpreter.ts';
import {
  CONTROL_SLOTS, ControlSlot, NO_REQUEST, PORT_REQUEST_FIELDS, RetireReason, WITHDRAWN, WorkerState, readPortRequest,
  type BootReport, type ErrorData, type PortRequests, type PortResponse, type RequestEnvelope, type StreamMessage, type WireRequest, type TaskResult, type WorkerBooted, type WorkerHello, type WorkerSpec,
} from './protocol.ts';
import { movableBuffers, ResponseWriter } from './response-writer.ts';
import { sharedStoreClient } from './shared-store-client.ts';
import { routeWorkerOutput } from './worker-output.ts';

const spec = workerData as WorkerSpec;
const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT));
const { port1: streamPort, port2: mainSidePort } = new MessageChannel();
const sharedStore = sharedStoreClient.open(control, spec.kind === 'python');
const hello: WorkerHello = { type: 'interpool:hello', workerId: threadId, streamPort: mainSidePort, control: control.buffer as SharedArrayBuffer, sharedStore };
parentPort!.postMessage(hello, [mainSidePort, sharedStore.port]);
// The stream port only sends until the end of this module (where it starts to receive):
// it must not keep an idle worker alive on its own.
streamPort.unref();
// Before anything is loaded: a runtime binds console's methods when it starts.
routeWorkerOutput(streamPort, control);

const timer = new BootTimer();
let interpreter: Interpreter | undefined;
let bootError: ErrorData | undefined;
try {
  interpreter = await bootInterpreter(spec, timer, control);
} catch (error) {
  bootError = toBootErrorData(error);
}
Atomics.store(control, ControlSlot.STATE, bootError ? WorkerState.BOOT_FAILED : WorkerState.IDLE);
publishMemory();
const booted: WorkerBooted = { type: 'interpool:booted', report: bootReport() };
parentPort!.postMessage(booted);

/** This worker's own request budget: --max-requests plus its share of the jitter. */
const maxRequests = spec.limits.maxRequests > 0
  ? spec.limits.maxRequests + Math.floor(Math.random() * (spec.limits.maxRequestsJitter + 1))
  : 0;

function toBootErrorData(error: unknown): ErrorData {
  if (error instanceof BootError) return { code: error.code, message: error.message, detail: error.detail };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'APP_BOOT_FAILED', message: `${spec.file}: ${message}`, detail: error instanceof Error ? error.stack : undefined };
}

function bootReport(): BootReport {
  return {
    workerId: threadId,
    kind: spec.kind,
    version: interpreter?.version ?? '',
    stages: timer.stages,
    ...(timer.notes.length > 0 ? { notes: timer.notes } : {}),
    ...(interpreter?.memoryMeasure ? { memory: interpreter.memoryMeasure } : {}),
    ...(bootError ? { error: bootError } : {}),
  };
}

async function handleRequest(envelope: RequestEnvelope): Promise<TaskResult> {
  if (!interpreter) return { kind: 'error', workerId: threadId, error: bootError!, headersSent: false };
  // A late interrupt or cancel aimed at the previous request must not hit this one.
  // (In embedded mode requests overlap: the flags then belong to the newest one.)
  if (active === 0) Atomics.store(control, ControlSlot.INTERRUPT, 0);
  if (active === 0) Atomics.store(control, ControlSlot.PAUSED, NO_REQUEST);
  active++;
  Atomics.store(control, ControlSlot.LAST_STARTED, envelope.id);
  Atomics.store(control, ControlSlot.REQUEST_ID, envelope.id);
  Atomics.store(control, ControlSlot.STATE, WorkerState.BUSY);
  try {
    return await interpreter.handle(envelope, new ResponseWriter(envelope.id, threadId, streamPort, control));
  } finally {
    const served = Atomics.add(control, ControlSlot.REQUESTS_SERVED, 1) + 1;
    // Decided before the result is posted, so the main thread never hands this worker
    // another request: it finishes this response and is replaced.
    Atomics.store(control, ControlSlot.RETIRING, retireReason(served, publishMemory()));
    if (--active === 0) {
      Atomics.store(control, ControlSlot.REQUEST_ID, NO_REQUEST);
      Atomics.store(control, ControlSlot.STATE, WorkerState.IDLE);
    }
  }
}

/** Requests running now: one, except in embedded mode (--workers 0), where they overlap. */
let active = 0;

function retireReason(served: number, memoryBytes: number): number {
  if (interpreter?.healthy?.() === false) return RetireReason.BROKEN;
  if (spec.limits.memoryLimitMb > 0 && memoryBytes > spec.limits.memoryLimitMb * 1024 * 1024) return RetireReason.MEMORY;
  if (maxRequests > 0 && served >= maxRequests) return RetireReason.RECYCLED;
  return RetireReason.NONE;
}

/** Publish the interpreter's memory in the control block (for limits and the dashboard). */
function publishMemory(): number {
  const bytes = interpreter?.memoryBytes?.() ?? getHeapStatistics().used_heap_size;
  Atomics.store(control, ControlSlot.MEMORY_KIB, Math.min(0x7fffffff, Math.round(bytes / 1024)));
  return bytes;
}

const EMPTY_BODY = new Uint8Array(0);

/** The end of this worker's line of requests: each starts once the one before it is done. */
let line: Promise<unknown> = Promise.resolve();

export default function handle(request: WireRequest): Promise<TaskResult> {
  if (request.body === undefined) request.body = EMPTY_BODY;
  const envelope = request as RequestEnvelope;
  if (envelope.claim === WITHDRAWN) return Promise.resolve(notRun());
  if (spec.overlap) return handleRequest(envelope);
  const turn = line.then(() => (claimed(envelope) ? handleRequest(envelope) : notRun()));
  line = turn.catch(() => undefined);
  return turn;
}

/**
 * A prefetched request runs only if this worker swaps its id out of its claim cell
 * before the main thread takes it back. A retiring worker declines it and leaves the
 * cell as it is, so that the main thread can still take it back and give it to another
 * worker even if this one is gone before its answer arrives. REQUEST_ID is set before
 * the swap, so that a main thread that lost the race finds the request running.
 */
function claimed(envelope: RequestEnvelope): boolean {
  if (envelope.claim === undefined) return true;
  if (Atomics.load(control, ControlSlot.RETIRING) !== RetireReason.NONE) return false;
  const cell = ControlSlot.PREFETCH + envelope.claim;
  Atomics.store(control, ControlSlot.REQUEST_ID, envelope.id);
  if (Atomics.compareExchange(control, cell, envelope.id, 0) === envelope.id) return true;
  Atomics.store(control, ControlSlot.REQUEST_ID, NO_REQUEST);
  return false;
}

function notRun(): TaskResult {
  return { kind: 'not-run', workerId: threadId };
}

/** A request's answer on the port: a whole response as a bare tuple (PortResponse), else a `result` message. */
function postResult(id: number, result: TaskResult): void {
  if (result.kind === 'response') {
    streamPort.postMessage([id, result.status, result.headers, result.body] satisfies PortResponse, movableBuffers(result.body));
  } else {
    streamPort.postMessage({ type: 'result', id, result } satisfies StreamMessage);
  }
}

/** The handler threw (as a piscina task's rejection would). */
function postFailure(id: number, error: unknown): void {
  streamPort.postMessage({ type: 'result', id, failure: error instanceof Error ? error.message : String(error) } satisfies StreamMessage);
}

// Requests to this worker once it has booted come on the stream port, several per
// message, without piscina (server/pool/worker-pool.ts): each is answered there too, in
// order with its stream messages. Listening only now, at the end of this module: the main thread
// offers requests to booted workers only, and handle() needs what is declared above.
streamPort.on('message', (requests: PortRequests) => {
  for (let index = 0; index < requests.length; index += PORT_REQUEST_FIELDS) {
    const request = readPortRequest(requests, index);
    const { id } = request;
    handle(request).then((result) => postResult(id, result), (error: unknown) => postFailure(id, error));
  }
});

// Adding a listener refs the port: piscina's port keeps the worker alive, not this one.
streamPort.unref();
