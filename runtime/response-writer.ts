/**
 * Carries one response from an interpreter to the main thread, whatever the kind.
 *
 * Two paths, chosen by how the app produced its body:
 * - whole: the app returned a finished list of chunks, so the headers and the body go
 *   back together as the task's result — one message, the common fast path;
 * - streamed: the app returned an iterator (or called write()), so the headers go out
 *   with the first non-empty chunk and each chunk as soon as it exists, over the
 *   worker's stream port, in order, ending with `end` or `error`.
 *
 * Nothing is sent before the first non-empty chunk (PEP 3333: headers are sent when the
 * first non-empty body string is yielded, or at the end), so an app can still replace
 * its headers through start_response(..., exc_info) until then.
 */
import type { MessagePort } from 'node:worker_threads';
import { ControlSlot, SMALL_BODY_BYTES, type ErrorData, type FlatHeaders, type HeaderPair, type StreamMessage, type TaskResult, type WholeBody } from './protocol.ts';

/**
 * A small body as the latin-1 string it crosses as (protocol.ts WholeBody); others as
 * they are. The native engine's host sends its small bodies as strings already.
 */
function toWholeBody(body: WholeBody): WholeBody {
  if (typeof body === 'string' || body.length === 0) return body;
  if (body.length === 1) {
    const chunk = body[0]!;
    if (chunk.byteLength > SMALL_BODY_BYTES) return body;
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
  }
  let length = 0;
  for (const chunk of body) length += chunk.byteLength;
  return length > SMALL_BODY_BYTES ? body : Buffer.concat(body, length).toString('latin1');
}

/**
 * Body buffers an interpreter made for one response alone (the native engine's copy of
 * a Python bytes, Pyodide's copy out of its memory): postMessage moves them to the main
 * thread (its transfer list) instead of copying them. Copying was the largest cost of
 * a large body: 1 MiB copied in the worker and again on the main thread cost each about
 * 4 ms of CPU under load, where Node's own write of it costs 0.6 (docs/loadtest.md,
 * "Large bodies are moved, not copied"). A JS app's buffers are its own (it may send
 * the same one again) and are copied as before.
 */
const movable = new WeakSet<ArrayBufferLike>();

/** Let `chunk`'s buffer be moved, if the chunk is the whole of it; returns the chunk. */
export function markMovable(chunk: Uint8Array): Uint8Array {
  const buffer = chunk.buffer;
  // Only a buffer of its own: moving a pooled or shared one (Node's Buffer pool, a
  // WebAssembly memory) would take it from everything else that uses it.
  if (chunk.byteOffset === 0 && chunk.byteLength === buffer.byteLength && buffer instanceof ArrayBuffer) movable.add(buffer);
  return chunk;
}

/** The buffers of `chunks` that may be moved, for postMessage's transfer list. */
export function movableBuffers(chunks: WholeBody): ArrayBuffer[] {
  if (typeof chunks === 'string') return [];
  const moved: ArrayBuffer[] = [];
  for (const chunk of chunks) {
    const buffer = chunk.buffer;
    // Each at most once (an app may list the same bytes twice), and forgotten: moved, it
    // is detached here.
    if (movable.delete(buffer)) moved.push(buffer as ArrayBuffer);
  }
  return moved;
}

/** What {@link ResponseWriter.watchCancellation} resolves with once the request is cancelled. */
export const CANCELLED = Symbol('cancelled');

/** How often a streaming request looks for a cancel while the app is between chunks. */
const CANCEL_POLL_MS = 50;
/** Upper bound of one flow-control wait; the main thread normally wakes it sooner. */
const FLOW_WAIT_MS = 1000;

/**
 * Watches the control block for a cancel of one request while the app is busy elsewhere
 * (waiting for its next chunk). The main thread only stores the flag, so this polls.
 * A class, not an object literal with a getter over a closure: see Placement in
 * server/pool/worker-pool.ts for what such literals cost the garbage collector.
 */
export class CancellationWatch {
  /** Resolves (never rejects) once the main thread cancels this request. */
  readonly cancelled: Promise<typeof CANCELLED>;
  /** True once `cancelled` has resolved. */
  fired = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(isCancelled: () => boolean) {
    this.cancelled = new Promise<typeof CANCELLED>((resolve) => {
      this.#timer = setInterval(() => {
        if (!isCancelled()) return;
        this.fired = true;
        clearInterval(this.#timer);
        resolve(CANCELLED);
      }, CANCEL_POLL_MS);
    });
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

export class ResponseWriter {
  readonly #id: number;
  readonly #workerId: number;
  readonly #port: MessagePort;
  readonly #control: Int32Array;
  #status: string | undefined;
  #headers: FlatHeaders = [];
  #headersSent = false;

  constructor(id: number, workerId: number, port: MessagePort, control: Int32Array) {
    this.#id = id;
    this.#workerId = workerId;
    this.#port = port;
    this.#control = control;
  }

  get headersSet(): boolean {
    return this.#status !== undefined;
  }

  /** The status the app set, for messages; undefined before start_response. */
  get status(): string | undefined {
    return this.#status;
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  /** True once the main thread asked to stop this request (client gone, bad headers). */
  get cancelled(): boolean {
    return Atomics.load(this.#control, ControlSlot.CANCEL) === this.#id;
  }

  /** Watch for a cancel of this request while the app is busy elsewhere (see CancellationWatch). */
  watchCancellation(): CancellationWatch {
    return new CancellationWatch(() => this.cancelled);
  }

  /** True while the client reads slower than the app produces (see ControlSlot.PAUSED). */
  get paused(): boolean {
    return Atomics.load(this.#control, ControlSlot.PAUSED) === this.#id;
  }

  /** Wait, without blocking the thread, until the client has drained what was sent. */
  async waitUntilWritable(): Promise<void> {
    while (this.paused && !this.cancelled) {
      const wait = Atomics.waitAsync(this.#control, ControlSlot.PAUSED, this.#id, FLOW_WAIT_MS);
      if (wait.async) await wait.value;
    }
  }

  /**
   * The same for interpreters that run the app synchronously (a Python generator): block
   * this worker thread, which serves nobody else meanwhile. A cancel also wakes it.
   */
  waitUntilWritableSync(): void {
    while (this.paused && !this.cancelled) Atomics.wait(this.#control, ControlSlot.PAUSED, this.#id, FLOW_WAIT_MS);
  }

  setHeaders(status: string, headers: readonly HeaderPair[]): void {
    const flat: FlatHeaders = [];
    for (let i = 0; i < headers.length; i++) flat.push(headers[i]![0], headers[i]![1]);
    this.setFlatHeaders(status, flat);
  }

  /** The same, from a list already flat (name, value, ...): this writer keeps it. */
  setFlatHeaders(status: string, headers: FlatHeaders): void {
    this.#status = status;
    this.#headers = headers;
  }

  /** Stream one chunk now; the headers go first if they have not gone yet. */
  sendChunk(data: Uint8Array): void {
    if (data.byteLength === 0) return;
    this.#sendHeadersOnce();
    this.#port.postMessage({ type: 'chunk', id: this.#id, data } satisfies StreamMessage, movableBuffers([data]));
  }

  /** Forward a line written to wsgi.errors, tagged on the main thread with app and worker. */
  log(line: string): void {
    this.#post({ type: 'log', id: this.#id, line });
  }

  /** The task result for a body that was complete when the app returned. */
  finishWhole(body: WholeBody): TaskResult {
    if (this.#headersSent) {
      if (typeof body === 'string') this.sendChunk(Buffer.from(body, 'latin1'));
      else for (const chunk of body) this.sendChunk(chunk);
      return this.finishStream();
    }
    return { kind: 'response', workerId: this.#workerId, status: this.#status!, headers: this.#headers, body: toWholeBody(body) };
  }

  /** Close a streamed body (or send headers with an empty body if nothing was streamed). */
  finishStream(): TaskResult {
    if (!this.#headersSent) return this.finishWhole([]);
    this.#post({ type: 'end', id: this.#id });
    return { kind: 'streamed', workerId: this.#workerId };
  }

  /** Report a failure: as the task result before headers were sent, on the stream after. */
  fail(error: ErrorData): TaskResult {
    if (!this.#headersSent) return { kind: 'error', workerId: this.#workerId, error, headersSent: false };
    this.#post({ type: 'error', id: this.#id, error, headersSent: true });
    return { kind: 'streamed', workerId: this.#workerId };
  }

  #sendHeadersOnce(): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    this.#post({ type: 'start', id: this.#id, status: this.#status!, headers: this.#headers });
  }

  #post(message: StreamMessage): void {
    this.#port.postMessage(message);
  }
}
