/**
 * Prefetch's claim cells (server/pool/prefetch.ts) against a worker's side of them
 * (fake-worker.ts, over a real SharedArrayBuffer), every race ordered by the test.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { CONTROL_SLOTS, ControlSlot, MAX_PREFETCH, RetireReason } from '../../../runtime/protocol.ts';
import * as prefetch from '../../../server/pool/prefetch.ts';
import { FakeWorker } from './fake-worker.ts';

describe('prefetch claim cells', () => {
  it('offers into free cells until all are taken, and counts what waits', () => {
    const worker = new FakeWorker();
    const ids = Array.from({ length: MAX_PREFETCH }, (_, index) => 11 + index);
    const claims = ids.map((id) => prefetch.offer(worker.control, id));
    expect(claims).toEqual(ids.map((_, index) => index));
    expect(MAX_PREFETCH).toBe(7);
    expect(prefetch.offer(worker.control, 99)).toBeUndefined();
    expect(prefetch.countWaiting(worker.control)).toBe(MAX_PREFETCH);
    expect(prefetch.waitingIds(worker.control)).toEqual(ids);
    // A cell freed (claimed) is offered again.
    expect(worker.claim(12, 1)).toBe(true);
    expect(prefetch.offer(worker.control, 99)).toBe(1);
    expect(prefetch.waitingIds(worker.control)).toEqual(ids.map((id) => (id === 12 ? 99 : id)));
  });

  it('claim first: the worker runs it, the main thread cannot take it back', () => {
    const worker = new FakeWorker();
    const claim = prefetch.offer(worker.control, 7)!;
    expect(worker.claim(7, claim)).toBe(true);
    expect(worker.requestId).toBe(7);
    expect(prefetch.takeBack(worker.control, 7, claim)).toBe(false);
    expect(prefetch.countWaiting(worker.control)).toBe(0);
  });

  it('take back first: the main thread owns it, the worker declines it and leaves REQUEST_ID clear', () => {
    const worker = new FakeWorker();
    const claim = prefetch.offer(worker.control, 7)!;
    expect(prefetch.takeBack(worker.control, 7, claim)).toBe(true);
    expect(worker.claim(7, claim)).toBe(false);
    expect(worker.requestId).toBe(0);
  });

  it('a cell reused by a newer request is not taken back under an older id', () => {
    const worker = new FakeWorker();
    const claim = prefetch.offer(worker.control, 7)!;
    expect(worker.claim(7, claim)).toBe(true);
    worker.finish();
    expect(prefetch.offer(worker.control, 8)).toBe(claim);
    // The old request's late take-back must not take the new one.
    expect(prefetch.takeBack(worker.control, 7, claim)).toBe(false);
    expect(worker.cell(claim)).toBe(8);
  });

  it('a retiring worker declines its offers and leaves them in their cells, to be taken back', () => {
    const worker = new FakeWorker();
    worker.start(1);
    const claims = [2, 3].map((id) => prefetch.offer(worker.control, id)!);
    worker.finish(RetireReason.RECYCLED);
    expect(worker.claim(2, claims[0]!)).toBe(false);
    expect(worker.claim(3, claims[1]!)).toBe(false);
    expect(prefetch.waitingIds(worker.control)).toEqual([2, 3]);
    expect(prefetch.takeBack(worker.control, 2, claims[0]!)).toBe(true);
    expect(prefetch.takeBack(worker.control, 3, claims[1]!)).toBe(true);
    expect(prefetch.countWaiting(worker.control)).toBe(0);
  });

  it('a worker that dies: what waits in its cells is taken back, what it claimed is not', () => {
    const worker = new FakeWorker();
    const claims = [21, 22, 23].map((id) => prefetch.offer(worker.control, id)!);
    expect(worker.claim(21, claims[0]!)).toBe(true);
    // The thread is gone; its control block is the main thread's to read.
    const { control } = worker;
    expect(prefetch.waitingIds(control)).toEqual([22, 23]);
    expect([21, 22, 23].map((id, index) => prefetch.takeBack(control, id, claims[index]!))).toEqual([false, true, true]);
  });

  it('claim racing take-back on two real threads: every request has exactly one owner', async () => {
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT));
    const rounds = 5_000;
    // The worker claims ids 1..rounds as they appear in cell 0; the main thread offers each,
    // then tries to take it back. Who wins each is up to the threads; that one does is not.
    const thread = new Worker(`
      const { workerData, parentPort } = require('node:worker_threads');
      const { control, rounds, cell, slot } = workerData;
      let claimed = 0;
      for (let id = 1; id <= rounds; id++) {
        while (Atomics.load(control, slot) !== id) Atomics.wait(control, slot, 1 - id);
        if (Atomics.compareExchange(control, cell, id, 0) === id) claimed++;
        Atomics.store(control, slot, -id);
        Atomics.notify(control, slot);
      }
      parentPort.postMessage(claimed);
    `, { eval: true, workerData: { control, rounds, cell: ControlSlot.PREFETCH, slot: ControlSlot.MEMORY_KIB } });
    const claimedByWorker = new Promise<number>((resolve, reject) => { thread.once('message', resolve); thread.once('error', reject); });
    let takenBack = 0;
    for (let id = 1; id <= rounds; id++) {
      expect(prefetch.offer(control, id)).toBe(0);
      // Let the worker race for it.
      Atomics.store(control, ControlSlot.MEMORY_KIB, id);
      Atomics.notify(control, ControlSlot.MEMORY_KIB);
      if (prefetch.takeBack(control, id, 0)) takenBack++;
      // Wait until the worker has tried too, so that cell 0 is free for the next id.
      while (Atomics.load(control, ControlSlot.MEMORY_KIB) !== -id) Atomics.wait(control, ControlSlot.MEMORY_KIB, id);
    }
    const claimed = await claimedByWorker;
    await thread.terminate();
    expect(claimed + takenBack).toBe(rounds);
    expect(prefetch.countWaiting(control)).toBe(0);
  });
});
