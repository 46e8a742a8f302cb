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
});

describe('AdmissionQueue', () => {
  it('is first in, first out, and refuses past its size (counting requests waiting elsewhere)', () => {
    const queue = new AdmissionQueue<string>(3);
    expect(queue.push('a')).toBe(true);
    expect(queue.push('b')).toBe(true);
    expect(queue.push('c', 1)).toBe(false);
    expect(queue.push('c')).toBe(true);
    expect(queue.push('d')).toBe(false);
    expect(queue.size).toBe(3);
    expect([queue.shift(), queue.shift(), queue.shift(), queue.shift()]).toEqual(['a', 'b', 'c', undefined]);
  });

  it('removes an entry from anywhere, and puts a taken-back one first, even when full', () => {
    const queue = new AdmissionQueue<string>(2);
    queue.push('a');
    queue.push('b');
    expect(queue.remove('a')).toBe(true);
    expect(queue.remove('a')).toBe(false);
    queue.push('a');
    queue.unshift('back');
    expect(queue.size).toBe(3);
    expect([queue.shift(), queue.shift(), queue.shift()]).toEqual(['back', 'b', 'a']);
  });

  it('drains every entry, oldest first', () => {
    const queue = new AdmissionQueue<string>(5);
    for (const entry of ['a', 'b', 'c']) queue.push(entry);
    const rejected: string[] = [];
    queue.drain((entry) => rejected.push(entry));
    expect(rejected).toEqual(['a', 'b', 'c']);
    expect(queue.size).toBe(0);
  });
});
