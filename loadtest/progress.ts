/**
 * Progress on stderr while the load test runs, with the elapsed time: a line per step,
 * and on a terminal one live line, rewritten in place, saying what runs now and how fast
 * it goes. Through a pipe (CI, a log file) the live line is left out: it would be noise.
 */

export class Progress {
  readonly #started = performance.now();
  readonly #live = process.stderr.isTTY === true;
  #showing = false;
  #steps = 0;

  #elapsed(): string {
    const seconds = Math.round((performance.now() - this.#started) / 1000);
    return `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
  }

  #write(text: string): void {
    if (this.#showing) process.stderr.write('\r\x1b[K');
    this.#showing = false;
    process.stderr.write(text);
  }

  section(title: string): void {
    this.#write(`\n[${this.#elapsed()}] == ${title}\n`);
  }

  step(line: string): void {
    this.#steps += 1;
    this.#write(`[${this.#elapsed()}] ${line}\n`);
  }

  note(line: string): void {
    this.#write(`[${this.#elapsed()}]   ${line}\n`);
  }

  /** The line that says what is running now; the next step, note or live line replaces it. */
  live(line: string): void {
    if (!this.#live) return;
    const width = process.stderr.columns || 120; // 0 when the terminal does not say
    this.#write(`[${this.#elapsed()}] … ${line}`.slice(0, Math.max(20, width - 1)));
    this.#showing = true;
  }

  /** Clear the live line, for what is printed after the run. */
  done(): void {
    this.#write('');
  }

  get steps(): number {
    return this.#steps;
  }
}
