/** Progress lines on stderr while the load test runs, with the elapsed time. */

export class Progress {
  readonly #started = performance.now();
  #steps = 0;

  #elapsed(): string {
    const seconds = Math.round((performance.now() - this.#started) / 1000);
    return `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
  }

  section(title: string): void {
    process.stderr.write(`\n[${this.#elapsed()}] == ${title}\n`);
  }

  step(line: string): void {
    this.#steps += 1;
    process.stderr.write(`[${this.#elapsed()}] ${line}\n`);
  }

  note(line: string): void {
    process.stderr.write(`[${this.#elapsed()}]   ${line}\n`);
  }

  get steps(): number {
    return this.#steps;
  }
}
