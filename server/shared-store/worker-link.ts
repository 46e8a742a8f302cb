/**
 * The main thread's end of each worker's shared store link (runtime/protocol.ts
 * SharedStoreLink): requests in, replies out, and the signal cell bumped and notified
 * after each reply, for a Python worker blocked until its answer comes.
 *
 * A Python call that waits for a lock gives up when its request runs past --timeout
 * (it posts 'abandon'): the lock, if it comes, is released here at once, or it would
 * stay held by an interpreter that no longer wants it until its expiry.
 */
import type { MessagePort } from 'node:worker_threads';
import type { SharedStoreLink, SharedStoreReply, SharedStoreRequest } from '../../runtime/protocol.ts';
import { runOperation } from './operations.ts';
import type { LockOwner, SharedStore } from './store.ts';

export class WorkerLink {
  readonly #store: SharedStore;
  readonly #port: MessagePort;
  readonly #signal: Int32Array;
  readonly #onError: (error: unknown) => void;
  /** Lock requests given up before they were granted. */
  readonly #abandoned = new Set<number>();
  /** The last lock granted: a worker gives up its one call at a time, at most this one. */
  #lastGrant: { seq: number; token: string } | undefined;
  /** The newest lock request answered (granted or not): older ones need nothing more. */
  #lastSettledLock = 0;
  #closed = false;

  constructor(store: SharedStore, link: SharedStoreLink, owner: LockOwner, onError: (error: unknown) => void) {
    this.#store = store;
    this.#port = link.port as MessagePort;
    this.#signal = new Int32Array(link.signal);
    this.#onError = onError;
    this.#port.on('message', (request: SharedStoreRequest) => {
      if (request.op === 'abandon') {
        this.#abandon(request.abandons ?? 0);
        return;
      }
      runOperation(store, request, owner).then(
        (reply) => this.#settle(request, reply),
        (error: unknown) => {
          onError(error);
          this.#settle(request, { seq: request.seq, ok: false, kind: 'unavailable', message: 'the shared store failed; see the server log' });
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

  #settle(request: SharedStoreRequest, reply: SharedStoreReply): void {
    if (request.op === 'lock') {
      const abandoned = this.#abandoned.delete(request.seq);
      this.#lastSettledLock = Math.max(this.#lastSettledLock, request.seq);
      if (reply.ok && typeof reply.result === 'string') {
        if (abandoned) {
          this.#release(reply.result);
          return;
        }
        this.#lastGrant = { seq: request.seq, token: reply.result };
      }
    }
    if (!request.noReply) this.#reply(reply);
  }

  #abandon(seq: number): void {
    if (this.#lastGrant?.seq === seq) {
      // Granted, but its reply came too late: the worker no longer waited.
      this.#release(this.#lastGrant.token);
      this.#lastGrant = undefined;
    } else if (seq > this.#lastSettledLock) {
      this.#abandoned.add(seq);
    }
  }

  #release(token: string): void {
    this.#store.unlock(token).catch(this.#onError);
  }

  #reply(reply: SharedStoreReply): void {
    if (this.#closed) return;
    this.#port.postMessage(reply);
    // After the post: a worker that saw the old count and found no reply waits on it.
    Atomics.add(this.#signal, 0, 1);
    Atomics.notify(this.#signal, 0);
  }
}
