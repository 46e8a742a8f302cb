/**
 * The worker's side of the app's shared store (the store itself lives on the main
 * thread, server/shared-store/, and outlives every interpreter).
 *
 * Python's calls are synchronous: the request is posted on this worker's store port,
 * and the thread blocks (Atomics.wait on the link's signal cell) until the main thread
 * has posted the reply and bumped the cell; receiveMessageOnPort then reads the reply
 * without the event loop. JS apps get Promises: their replies come as port messages, so
 * the worker's event loop keeps running (other requests in embedded mode, timers).
 * A worker uses one way or the other, never both (Python apps or JS apps).
 */
import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import {
  ControlSlot, type SharedStoreLink, type SharedStoreOp, type SharedStoreReply, type SharedStoreRequest,
} from './protocol.ts';

/** The global name of the Python entry point (wsgi.py names it too). */
export const PYTHON_ENTRY = 'interpoolSharedStore';

/** A synchronous wait looks at the interrupt flag (a --timeout) at least this often. */
const WAIT_SLICE_MS = 50;

type Call = Omit<SharedStoreRequest, 'seq'>;

export class SharedStoreClient {
  #port: MessagePort | undefined;
  #signal: Int32Array | undefined;
  #control: Int32Array | undefined;
  #seq = 0;
  /** Async calls waiting for their reply. */
  readonly #pending = new Map<number, (reply: SharedStoreReply) => void>();
  #listening = false;

  /**
   * Make the link to publish in the worker's hello (its port is to be transferred).
   * For Python, {@link callFromPython} is also made a global function, PYTHON_ENTRY,
   * which wsgi.py reaches under Pyodide through its `js` module at each call (no
   * reference kept, so that a memory snapshot holds none); the native engine hands it
   * to wsgi.py instead.
   */
  open(control: Int32Array, forPython: boolean): SharedStoreLink & { port: MessagePort } {
    if (forPython) Object.defineProperty(globalThis, PYTHON_ENTRY, { value: this.callFromPython.bind(this) });
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    // Unused until the app calls: it must not keep an idle worker alive on its own.
    port1.unref();
    this.#signal = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
    this.#control = control;
    return { port: port2, signal: this.#signal.buffer as SharedArrayBuffer };
  }

  /** One call, blocking this thread until its reply (Python: both engines). */
  callSync(call: Call): SharedStoreReply {
    const port = this.#linked();
    const signal = this.#signal!;
    const seq = ++this.#seq;
    port.postMessage({ ...call, seq } satisfies SharedStoreRequest);
    for (;;) {
      // Read the cell before looking for the reply: a reply posted after the look
      // changes the cell, so the wait returns at once instead of missing it.
      const seen = Atomics.load(signal, 0);
      const received = receiveMessageOnPort(port);
      if (received) {
        const reply = received.message as SharedStoreReply;
        // Otherwise the late reply of a call given up (below): nobody waits for it.
        if (reply.seq === seq) return reply;
        continue;
      }
      if (Atomics.load(this.#control!, ControlSlot.INTERRUPT) !== 0) {
        // The request ran past --timeout: give up waiting (Python raises
        // KeyboardInterrupt next). A lock must then not be granted to nobody: the main
        // thread releases it if it comes.
        if (call.op === 'lock') port.postMessage({ seq: ++this.#seq, op: 'abandon', key: call.key, abandons: seq, noReply: true } satisfies SharedStoreRequest);
        return { seq, ok: false, kind: 'timeout', message: 'interrupted: the request ran past --timeout' };
      }
      Atomics.wait(signal, 0, seen, WAIT_SLICE_MS);
    }
  }

  /** One call, answered by a Promise (JS apps). */
  call(call: Call): Promise<SharedStoreReply> {
    const port = this.#linked();
    if (!this.#listening) {
      this.#listening = true;
      port.on('message', (reply: SharedStoreReply) => {
        const settle = this.#pending.get(reply.seq);
        this.#pending.delete(reply.seq);
        if (this.#pending.size === 0) port.unref();
        settle?.(reply);
      });
      port.unref();
    }
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#pending.set(seq, resolve);
      port.ref();
      port.postMessage({ ...call, seq } satisfies SharedStoreRequest);
    });
  }

  /**
   * The entry point of runtime/wsgi.py: positional arguments (both Python engines pass
   * them without conversion trouble) and one string back, tagged by its first character:
   * "v" an encoded value follows, "n" nothing (a missing key), "j" JSON follows (a
   * number, a boolean, a list of keys, a lock's token), "e" JSON [kind, message].
   */
  callFromPython(op: SharedStoreOp, key: string, text?: string | null, number?: number | null, extra?: string | number | null): string {
    const call: Call = { op, key };
    switch (op) {
      case 'set': call.value = text ?? undefined; if (number != null) call.ttl = number; break;
      case 'incr': call.delta = number ?? 1; break;
      case 'cas': call.value = text ?? undefined; if (extra != null) call.expected = String(extra); break;
      case 'lock': call.timeout = number ?? undefined; if (extra != null) call.ttl = Number(extra); break;
      case 'unlock': call.token = text ?? undefined; break;
      default: break;
    }
    const reply = this.callSync(call);
    if (!reply.ok) return `e${JSON.stringify([reply.kind, reply.message])}`;
    if (reply.result === undefined) return 'n';
    if (op === 'get') return `v${reply.result as string}`;
    return `j${JSON.stringify(reply.result)}`;
  }

  #linked(): MessagePort {
    if (!this.#port) throw new Error('the shared store is not linked in this thread');
    return this.#port;
  }
}

/** This worker's one client. */
export const sharedStoreClient = new SharedStoreClient();
