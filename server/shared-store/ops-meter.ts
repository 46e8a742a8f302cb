/**
 * Operations a second of one store, over the last few whole seconds: counted in
 * one-second buckets, so that counting costs an addition and reading costs nothing.
 */
const WINDOW_SECONDS = 5;

export class OpsMeter {
  #total = 0;
  readonly #buckets = new Array<number>(WINDOW_SECONDS + 1).fill(0);
  #second = Math.floor(Date.now() / 1000);

  count(): void {
    this.#advance();
    this.#total++;
    this.#buckets[this.#second % this.#buckets.length]!++;
  }

  get total(): number {
    return this.#total;
  }

  /** The mean over the last WINDOW_SECONDS whole seconds (the current one is not over). */
  get perSecond(): number {
    this.#advance();
    let sum = 0;
    for (let i = 1; i <= WINDOW_SECONDS; i++) sum += this.#buckets[(this.#second - i) % this.#buckets.length]!;
    return sum / WINDOW_SECONDS;
  }

  #advance(): void {
    const now = Math.floor(Date.now() / 1000);
    // Buckets of the seconds that passed without an operation are emptied.
    for (let second = this.#second + 1; second <= Math.min(now, this.#second + this.#buckets.length); second++) {
      this.#buckets[second % this.#buckets.length] = 0;
    }
    this.#second = now;
  }
}
