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

interface Waiting<T> {
  entry: T;
  timer: NodeJS.Timeout | undefined;
}

export class AdmissionQueue<T extends QueueEntry> {
  readonly #maxSize: number;
  readonly #timeoutMs: number;
  /**
   * Oldest first. An array, not a Map keyed by entry: a Map's rehashed tables kept every
   * request they had seen alive through young-generation GCs (see IdTable). The queue
   * is bounded by --max-queue, so finding an entry to remove is a short scan.
   */
  readonly #waiting: Waiting<T>[] = [];

  constructor(maxSize: number, timeoutSeconds: number) {
    this.#maxSize = maxSize;
    this.#timeoutMs = timeoutSeconds * 1000;
  }

  get size(): number {
    return this.#waiting.length;
  }

  /**
   * Queue an entry; false when the queue is full (the caller answers 503). `waitingElsewhere`
   * counts requests that wait outside this queue but against the same limit.
   */
  push(entry: T, waitingElsewhere = 0): boolean {
    if (this.#waiting.length + waitingElsewhere >= this.#maxSize) return false;
    let timer: NodeJS.Timeout | undefined;
    if (this.#timeoutMs > 0) {
      timer = setTimeout(() => {
        if (this.remove(entry)) entry.expire();
      }, this.#timeoutMs);
      timer.unref();
    }
    this.#waiting.push({ entry, timer });
    return true;
  }

  /**
   * Put an entry back at the head, past the size limit if need be: it was admitted
   * already, and handed out (rarely: it was taken back from a busy worker). It keeps no
   * queue timeout (--timeout still applies).
   */
  unshift(entry: T): void {
    this.#waiting.unshift({ entry, timer: undefined });
  }

  /** Take the oldest entry out, or undefined when the queue is empty. */
  shift(): T | undefined {
    const oldest = this.#waiting.shift();
    if (!oldest) return undefined;
    clearTimeout(oldest.timer);
    return oldest.entry;
  }

  /** Take an entry out wherever it is (client gone); false if it was not queued. */
  remove(entry: T): boolean {
    const index = this.#waiting.findIndex((waiting) => waiting.entry === entry);
    if (index < 0) return false;
    clearTimeout(this.#waiting[index]!.timer);
    this.#waiting.splice(index, 1);
    return true;
  }

  /** Empty the queue, handing every entry to `reject` (shutdown). */
  drain(reject: (entry: T) => void): void {
    for (const { entry, timer } of this.#waiting.splice(0)) {
      clearTimeout(timer);
      reject(entry);
    }
  }
}
