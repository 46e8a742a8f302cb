/**
 * The bounded wait in front of an app's interpreters (mod_wsgi's listen backlog, with
 * its queue-timeout). A request either gets a free interpreter, waits here, or is
 * refused at once when the queue is full; a request that leaves the queue (deadline,
 * client gone) never reaches an interpreter, because nothing is handed to the pool
 * until an interpreter is free to take it.
 */

export interface QueueEntry {
  /** Called when the entry reaches the head of the queue and a worker is free. */
  start(): void;
  /** Called when the entry waited past the queue timeout (it has left the queue). */
  expire(): void;
}

export class AdmissionQueue<T extends QueueEntry> {
  readonly #maxSize: number;
  readonly #timeoutMs: number;
  /** Insertion-ordered: the first entry is the oldest. Removal of any entry is O(1). */
  readonly #entries = new Map<T, NodeJS.Timeout | undefined>();

  constructor(maxSize: number, timeoutSeconds: number) {
    this.#maxSize = maxSize;
    this.#timeoutMs = timeoutSeconds * 1000;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Queue an entry; false when the queue is full (the caller answers 503). `waitingElsewhere`
   * counts requests that wait outside this queue but against the same limit.
   */
  push(entry: T, waitingElsewhere = 0): boolean {
    if (this.#entries.size + waitingElsewhere >= this.#maxSize) return false;
    let timer: NodeJS.Timeout | undefined;
    if (this.#timeoutMs > 0) {
      timer = setTimeout(() => {
        this.#entries.delete(entry);
        entry.expire();
      }, this.#timeoutMs);
      timer.unref();
    }
    this.#entries.set(entry, timer);
    return true;
  }

  /**
   * Put an entry back at the head, past the size limit if need be: it was admitted
   * already, and handed out (rarely: it was taken back from a busy worker). It keeps no
   * queue timeout (--timeout still applies).
   */
  unshift(entry: T): void {
    const rest = [...this.#entries];
    this.#entries.clear();
    this.#entries.set(entry, undefined);
    for (const [other, timer] of rest) this.#entries.set(other, timer);
  }

  /** Take the oldest entry out, or undefined when the queue is empty. */
  shift(): T | undefined {
    const next = this.#entries.keys().next();
    if (next.done) return undefined;
    this.remove(next.value);
    return next.value;
  }

  /** Take an entry out wherever it is (client gone); false if it was not queued. */
  remove(entry: T): boolean {
    if (!this.#entries.has(entry)) return false;
    clearTimeout(this.#entries.get(entry));
    this.#entries.delete(entry);
    return true;
  }

  /** Empty the queue, handing every entry to `reject` (shutdown). */
  drain(reject: (entry: T) => void): void {
    for (const entry of [...this.#entries.keys()]) {
      this.remove(entry);
      reject(entry);
    }
  }
}
