import { describe, expect, it } from 'vitest';
import { AdmissionQueue, type QueueEntry } from '../../server/admission-queue.ts';
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

class Entry implements QueueEntry {
  readonly name: string;
  started = false;
  expired = false;
  constructor(name: string) { this.name = name; }
  start(): void { this.started = true; }
  expire(): void { this.expired = true; }
}

describe('AdmissionQueue', () => {
  it('is first in, first out, and refuses past its size (counting requests waiting elsewhere)', () => {
    const queue = new AdmissionQueue<Entry>(3, 0);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => new Entry(name));
    expect(queue.push(a!)).toBe(true);
    expect(queue.push(b!)).toBe(true);
    expect(queue.push(c!, 1)).toBe(false);
    expect(queue.push(c!)).toBe(true);
    expect(queue.push(d!)).toBe(false);
    expect(queue.size).toBe(3);
    expect([queue.shift(), queue.shift(), queue.shift(), queue.shift()]).toEqual([a, b, c, undefined]);
  });

  it('removes an entry from anywhere, and puts a taken-back one first, even when full', () => {
    const queue = new AdmissionQueue<Entry>(2, 0);
    const [a, b, back] = ['a', 'b', 'back'].map((name) => new Entry(name));
    queue.push(a!);
    queue.push(b!);
    expect(queue.remove(a!)).toBe(true);
    expect(queue.remove(a!)).toBe(false);
    queue.push(a!);
    queue.unshift(back!);
    expect(queue.size).toBe(3);
    expect([queue.shift(), queue.shift(), queue.shift()]).toEqual([back, b, a]);
  });

  it('expires an entry that waits past the queue timeout, and only that one', async () => {
    const queue = new AdmissionQueue<Entry>(5, 0.05);
    const [waits, leaves] = ['waits', 'leaves'].map((name) => new Entry(name));
    queue.push(waits!);
    queue.push(leaves!);
    queue.remove(leaves!);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(waits!.expired).toBe(true);
    expect(leaves!.expired).toBe(false);
    expect(queue.size).toBe(0);
  });

  it('drains every entry, oldest first, and none expires afterwards', async () => {
    const queue = new AdmissionQueue<Entry>(5, 0.05);
    const entries = ['a', 'b', 'c'].map((name) => new Entry(name));
    for (const entry of entries) queue.push(entry);
    const rejected: string[] = [];
    queue.drain((entry) => rejected.push(entry.name));
    expect(rejected).toEqual(['a', 'b', 'c']);
    expect(queue.size).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(entries.some((entry) => entry.expired)).toBe(false);
  });
});
