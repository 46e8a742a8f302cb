/**
 * `wsgi.input` and `wsgi.errors` for JavaScript apps, in the shape PEP 3333 gives them.
 */

const NEWLINE = 0x0a;

/** A readable binary stream over the buffered request body. */
export class InputStream implements Iterable<Uint8Array> {
  readonly #body: Uint8Array;
  #position = 0;

  constructor(body: Uint8Array) {
    this.#body = body;
  }

  /** Read up to `size` bytes (all that is left when omitted or negative). */
  read(size?: number | null): Uint8Array {
    const end = size == null || size < 0 ? this.#body.length : Math.min(this.#body.length, this.#position + size);
    const chunk = this.#body.subarray(this.#position, end);
    this.#position = end;
    return chunk;
  }

  /** Read one line, newline included, of at most `size` bytes. */
  readline(size?: number | null): Uint8Array {
    const newline = this.#body.indexOf(NEWLINE, this.#position);
    let end = newline === -1 ? this.#body.length : newline + 1;
    if (size != null && size >= 0) end = Math.min(end, this.#position + size);
    const line = this.#body.subarray(this.#position, end);
    this.#position = end;
    return line;
  }

  /** Read the remaining lines; stops once `hint` bytes have been read, when given. */
  readlines(hint?: number | null): Uint8Array[] {
    const lines: Uint8Array[] = [];
    let total = 0;
    for (let line = this.readline(); line.length > 0; line = this.readline()) {
      lines.push(line);
      total += line.length;
      if (hint != null && hint > 0 && total >= hint) break;
    }
    return lines;
  }

  *[Symbol.iterator](): Iterator<Uint8Array> {
    for (let line = this.readline(); line.length > 0; line = this.readline()) yield line;
  }
}

/** A text stream whose complete lines go to the server log, tagged with app and worker. */
export class ErrorStream {
  readonly #emit: (line: string) => void;
  #pending = '';

  constructor(emit: (line: string) => void) {
    this.#emit = emit;
  }

  write(text: string): number {
    const all = this.#pending + String(text);
    const lines = all.split('\n');
    this.#pending = lines.pop()!;
    for (const line of lines) this.#emit(line);
    return String(text).length;
  }

  writelines(lines: Iterable<string>): void {
    for (const line of lines) this.write(line);
  }

  flush(): void {
    if (this.#pending === '') return;
    this.#emit(this.#pending);
    this.#pending = '';
  }
}
