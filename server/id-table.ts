/**
 * An id → value table for the registries on the request path (the placement and the
 * running-request record of each request in flight, by request id): an open-addressed
 * hash over two arrays, the id's low bits its first slot, collisions in the next slots.
 *
 * Not a Map, on purpose. When V8 rehashes a Map it keeps the old table, entries and all,
 * pointing at the new one (so that live iterators can follow). Once one such table has
 * been promoted to the old generation, it holds the next table alive, and that one the
 * next, with every request their entries reach, through each young-generation GC until
 * the next full one: under load, about 10 MB promoted per minor GC and scavenges of
 * 10 ms (docs/loadtest.md, "The promoted garbage"). Nor a plain object's dictionary
 * (which kept no such chain, but cost ~0.5 us per set, get and delete of a sliding window
 * of ids, four times this): ids in flight are a window that slides by one per request,
 * so here each lands in its own slot, and the arrays are replaced only when they grow.
 */
const EMPTY = -1;
const INITIAL_CAPACITY = 64;

export class IdTable<T> {
  #ids: number[] = new Array<number>(INITIAL_CAPACITY).fill(EMPTY);
  #values: (T | undefined)[] = new Array<T | undefined>(INITIAL_CAPACITY).fill(undefined);
  #mask = INITIAL_CAPACITY - 1;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(id: number): T | undefined {
    const slot = this.#slotOf(id);
    return this.#ids[slot] === id ? this.#values[slot] : undefined;
  }

  has(id: number): boolean {
    return this.#ids[this.#slotOf(id)] === id;
  }

  set(id: number, value: T): void {
    let slot = this.#slotOf(id);
    if (this.#ids[slot] !== id) {
      // At most half full, so that a probe always ends soon at an empty slot.
      if ((this.#size + 1) * 2 > this.#ids.length) {
        this.#grow();
        slot = this.#slotOf(id);
      }
      this.#ids[slot] = id;
      this.#size++;
    }
    this.#values[slot] = value;
  }

  /** A snapshot of the values (the table may change while the caller walks it). */
  values(): T[] {
    const values: T[] = [];
    for (let slot = 0; slot < this.#ids.length; slot++) if (this.#ids[slot] !== EMPTY) values.push(this.#values[slot]!);
    return values;
  }

  delete(id: number): boolean {
    let hole = this.#slotOf(id);
    if (this.#ids[hole] !== id) return false;
    this.#size--;
    // Backward shift: an entry further along the probe that may sit in the hole moves
    // into it (no tombstones, so lookups never walk past deleted entries).
    const mask = this.#mask;
    for (let slot = (hole + 1) & mask; this.#ids[slot] !== EMPTY; slot = (slot + 1) & mask) {
      const home = this.#ids[slot]! & mask;
      if (((slot - home) & mask) >= ((slot - hole) & mask)) {
        this.#ids[hole] = this.#ids[slot]!;
        this.#values[hole] = this.#values[slot];
        hole = slot;
      }
    }
    this.#ids[hole] = EMPTY;
    this.#values[hole] = undefined;
    return true;
  }

  /** The slot holding id, or the empty slot where it would go. */
  #slotOf(id: number): number {
    const mask = this.#mask;
    let slot = id & mask;
    for (;;) {
      const held = this.#ids[slot];
      if (held === id || held === EMPTY) return slot;
      slot = (slot + 1) & mask;
    }
  }

  #grow(): void {
    const ids = this.#ids;
    const values = this.#values;
    const capacity = ids.length * 2;
    this.#ids = new Array<number>(capacity).fill(EMPTY);
    this.#values = new Array<T | undefined>(capacity).fill(undefined);
    this.#mask = capacity - 1;
    for (let slot = 0; slot < ids.length; slot++) {
      if (ids[slot] === EMPTY) continue;
      const into = this.#slotOf(ids[slot]!);
      this.#ids[into] = ids[slot]!;
      this.#values[into] = values[slot];
    }
  }
}
