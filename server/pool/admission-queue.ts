/**
 * The bounded wait in front of an app's interpreters (mod_wsgi's listen backlog). A
 * request either gets a free interpreter, waits here, or is refused at once when the
 * queue is full; a request that leaves the queue (its --queue-timeout, which the
 * request's ticket keeps wherever it waits, or its client gone) never reaches an
 * interpreter, because nothing is handed to the pool until an interpreter has room.
 */

export class AdmissionQueue<T> {
  readonly #maxSize: number;
  /**
   * Oldest first. An array, not a Map keyed by entry: a Map's rehashed tables kept every
   * request they had seen alive through young-generation GCs (see IdTable). The queue
   * is bounded by --max-queue, so finding an entry to remove is a short scan.
   */
  readonly #waiting: T[] = [];
  /** Admission order: an entry put back goes before every entry admitted after it. */
  readonly #orderOf: (entry: T) => number;

  constructor(maxSize: number, orderOf: (entry: T) => number) {
    this.#maxSize = maxSize;
    this.#orderOf = orderOf;
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
    this.#waiting.push(entry);
    return true;
  }

  /**
   * Put an entry back, past the size limit if need be: it was admitted already, and
   * handed out (rarely: it was taken back from a busy worker). It goes before every
   * entry admitted after it, so that several taken back at once keep their order.
   */
  putBack(entry: T): void {
    const order = this.#orderOf(entry);
    let index = 0;
    while (index < this.#waiting.length && this.#orderOf(this.#waiting[index]!) < order) index++;
    this.#waiting.splice(index, 0, entry);
  }

  /** Take the oldest entry out, or undefined when the queue is empty. */
  shift(): T | undefined {
    return this.#waiting.shift();
  }

  /** Take an entry out wherever it is (client gone, deadline); false if it was not queued. */
  remove(entry: T): boolean {
    const index = this.#waiting.indexOf(entry);
    if (index < 0) return false;
    this.#waiting.splice(index, 1);
    return true;
  }

  /** Empty the queue, handing every entry to `reject` (shutdown). */
  drain(reject: (entry: T) => void): void {
    for (const entry of this.#waiting.splice(0)) reject(entry);
  }
}
