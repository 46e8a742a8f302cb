import { describe, expect, it } from 'vitest';
import { AdmissionQueue } from '../../server/pool/admission-queue.ts';
import { IdTable } from '../../server/id-table.ts';

describe('IdTable', () => {
  it('sets, gets, counts and deletes by id', () => {
    const table = new IdTable<string>();
    expect(table.size).toBe(0);
    table.set(7, 'seven');
    table.set(0x7fffffff, 'largest id');
    table.set(7, 'seven again');
    expect(table.size).toBe(2);
    expect(table.get(7)).toBe('seven again');
    expect(table.has(0x7fffffff)).toBe(true);
    expect(table.get(8)).toBeUndefined();
    expect(table.delete(7)).toBe(true);
    expect(table.delete(7)).toBe(false);
    expect(table.has(7)).toBe(false);
    expect(table.size).toBe(1);
  });

  it('stays consistent through many ids coming and going', () => {
    const table = new IdTable<number>();
    for (let id = 1; id <= 10_000; id++) {
      table.set(id, id);
      if (id > 32) expect(table.delete(id - 32)).toBe(true);
    }
    expect(table.size).toBe(32);
    expect(table.get(10_000 - 31)).toBe(10_000 - 31);
    expect(table.has(10_000 - 32)).toBe(false);
  });

  it('keeps every entry findable through growth and deletions anywhere, as a Map would', () => {
    const table = new IdTable<number>();
    const model = new Map<number, number>();
    // A fixed pseudo-random walk: ids that collide in the low bits, runs of neighbours,
    // deletions in the middle of probe chains, and growth from 64 slots to thousands.
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
    for (let step = 0; step < 50_000; step++) {
      const id = step < 25_000 ? (next() % 3000) * (step % 3 === 0 ? 64 : 1) : next() % 500;
      if (next() % 3 === 0) expect(table.delete(id)).toBe(model.delete(id));
      else {
        table.set(id, step);
        model.set(id, step);
      }
    }
    expect(table.size).toBe(model.size);
    for (const [id, value] of model) expect(table.get(id)).toBe(value);
    for (let id = 0; id < 3000 * 64; id += 7) expect(table.has(id)).toBe(model.has(id));
    expect(table.values().sort((a, b) => a - b)).toEqual([...model.values()].sort((a, b) => a - b));
  });
});

/** Entries named by their admission order: 'a3' was admitted third. */
const orderOf = (entry: string) => Number(entry.slice(1));

describe('AdmissionQueue', () => {
  it('is first in, first out, and refuses past its size (counting requests waiting elsewhere)', () => {
    const queue = new AdmissionQueue<string>(3, orderOf);
    expect(queue.push('a1')).toBe(true);
    expect(queue.push('b2')).toBe(true);
    expect(queue.push('c3', 1)).toBe(false);
    expect(queue.push('c3')).toBe(true);
    expect(queue.push('d4')).toBe(false);
    expect(queue.size).toBe(3);
    expect([queue.shift(), queue.shift(), queue.shift(), queue.shift()]).toEqual(['a1', 'b2', 'c3', undefined]);
  });

  it('removes an entry from anywhere, and puts a taken-back one before later ones, even when full', () => {
    const queue = new AdmissionQueue<string>(2, orderOf);
    queue.push('a5');
    queue.push('b6');
    expect(queue.remove('a5')).toBe(true);
    expect(queue.remove('a5')).toBe(false);
    queue.push('a7');
    queue.putBack('back1');
    expect(queue.size).toBe(3);
    expect([queue.shift(), queue.shift(), queue.shift()]).toEqual(['back1', 'b6', 'a7']);
  });

  it('puts back several taken-back entries in admission order, whatever order they come back in', () => {
    const queue = new AdmissionQueue<string>(2, orderOf);
    queue.push('q5');
    for (const entry of ['t3', 't1', 't4', 't2']) queue.putBack(entry);
    expect([queue.shift(), queue.shift(), queue.shift(), queue.shift(), queue.shift()]).toEqual(['t1', 't2', 't3', 't4', 'q5']);
  });

  it('drains every entry, oldest first', () => {
    const queue = new AdmissionQueue<string>(5, orderOf);
    for (const entry of ['a1', 'b2', 'c3']) queue.push(entry);
    const rejected: string[] = [];
    queue.drain((entry) => rejected.push(entry));
    expect(rejected).toEqual(['a1', 'b2', 'c3']);
    expect(queue.size).toBe(0);
  });
});
