/**
 * The main thread's end of each worker's shared store link (runtime/protocol.ts
 * SharedStoreLink): requests in, replies out, and the signal cell bumped and notified
 * after each reply, for a Python worker blocked until its answer comes.
 */
import type { MessagePort } from 'node:worker_threads';
import type { SharedStoreLink, SharedStoreReply, SharedStoreRequest } from '../../runtime/protocol.ts';
import { runOperation } from './operations.ts';
import type { LockOwner, SharedStore } from './store.ts';

export class WorkerLink {
  readonly #port: MessagePort;
  readonly #signal: Int32Array;
  #closed = false;

  constructor(store: SharedStore, link: SharedStoreLink, owner: LockOwner, onError: (error: unknown) => void) {
    this.#port = link.port as MessagePort;
    this.#signal = new Int32Array(link.signal);
    this.#port.on('message', (request: SharedStoreRequest) => {
      runOperation(store, request, owner).then(
        (reply) => { if (!request.noReply) this.#reply(reply); },
        (error: unknown) => {
          onError(error);
          if (!request.noReply) this.#reply({ seq: request.seq, ok: false, kind: 'unavailable', message: 'the shared store failed; see the server log' });
        },
      );
    });
    // An idle worker's link must not keep the server alive.
    this.#port.unref();
  }

  close(): void {
    this.#closed = true;
    this.#port.close();
  }

  #reply(reply: SharedStoreReply): void {
    if (this.#closed) return;
    this.#port.postMessage(reply);
    // After the post: a worker that saw the old count and found no reply waits on it.
    Atomics.add(this.#signal, 0, 1);
    Atomics.notify(this.#signal, 0);
  }
}
