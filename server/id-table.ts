/**
 * An id → value table for the registries on the request path (the response sender of
 * each request in flight, by request id).
 *
 * Not a Map, on purpose. When V8 rehashes a Map it keeps the old table, entries and all,
 * pointing at the new one (so that live iterators can follow). Once one such table has
 * been promoted to the old generation, it holds the next table alive, and that one the
 * next, with every request their entries reach, through each young-generation GC until
 * the next full one: under load, about 10 MB promoted per minor GC and scavenges of
 * 10 ms (docs/loadtest.md, "The promoted garbage"). A plain object's dictionary keeps no
 * such chain.
 */
export class IdTable<T> {
  #entries: Record<number, T> = Object.create(null) as Record<number, T>;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(id: number): T | undefined {
    return this.#entries[id];
  }

  has(id: number): boolean {
    return id in this.#entries;
  }

  set(id: number, value: T): void {
    if (!(id in this.#entries)) this.#size++;
    this.#entries[id] = value;
  }

  /** A snapshot of the values (the table may change while the caller walks it). */
  values(): T[] {
    return Object.values(this.#entries);
  }

  delete(id: number): boolean {
    if (!(id in this.#entries)) return false;
    delete this.#entries[id];
    this.#size--;
    return true;
  }
}
