/**
 * server/pool/piscina-adapter.ts against a real piscina pool (one thread): what the
 * scheduler reads from it must be true from the first task on.
 */
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { WireRequest } from '../../../runtime/protocol.ts';
import { PiscinaAdapter, type PlacedTask, type ThreadView } from '../../../server/pool/piscina-adapter.ts';

const WORKER = fileURLToPath(new URL('../../fixtures/piscina/body-length.mjs', import.meta.url));

describe('PiscinaAdapter', () => {
  let adapter: PiscinaAdapter<PlacedTask> | undefined;
  afterEach(async () => {
    await adapter?.destroy();
    adapter = undefined;
  });

  // piscina hands tasks to a worker before it announces it ('workerCreate', a microtask
  // later at start; once the worker is ready otherwise). A count of 0 there made the
  // scheduler take a busy worker for an idle one and give it a second request to run at
  // once: with --max-requests 1, that request died with its retiring worker (502).
  it('counts the tasks of a worker piscina has not announced yet', async () => {
    let placedOn: ThreadView | undefined;
    adapter = new PiscinaAdapter<PlacedTask>({
      filename: WORKER, workerData: null, minThreads: 1, maxThreads: 1, concurrentTasksPerWorker: 2, idleTimeout: Infinity,
      place: (_task, workers) => (placedOn = workers[0] ?? null),
      onMessage: () => {},
      onIdleError: () => {},
    });
    const envelope: WireRequest = { id: 1, cgi: {}, urlScheme: 'http' };
    const running = adapter.run({ envelope, transferList: [] });
    expect(placedOn).toBeDefined();
    expect(adapter.usage(placedOn!.id)).toBe(1);
    await running;
    expect(adapter.usage(placedOn!.id)).toBe(0);
  });

  // A view reads its id off its thread, -1 once the thread has exited: forgetting an
  // exited worker by that id kept every recycled worker (its Worker object, ports and
  // stdio streams) in the adapter's maps, ~10 KiB of the server's memory a recycle.
  it('forgets a worker once its thread has exited', async () => {
    const placed: number[] = [];
    adapter = new PiscinaAdapter<PlacedTask>({
      filename: WORKER, workerData: null, minThreads: 1, maxThreads: 1, concurrentTasksPerWorker: 1, idleTimeout: Infinity,
      place: (_task, workers) => {
        const chosen = workers[0] ?? null;
        if (chosen) placed.push(chosen.id);
        return chosen;
      },
      onMessage: () => {},
      onIdleError: () => {},
    });
    for (let round = 1; round <= 3; round++) {
      await adapter.run({ envelope: { id: round, cgi: {}, urlScheme: 'http' }, transferList: [] });
      const id = placed.at(-1)!;
      const thread = adapter.thread(id);
      expect(thread?.threadId).toBe(id);
      const exited = once(thread!, 'exit');
      adapter.terminate(id);
      await exited;
      expect(adapter.thread(id)).toBeUndefined();
      expect(adapter.usage(id)).toBe(0);
    }
    // Each round ran on a new thread, which piscina started in place of the last.
    expect(new Set(placed).size).toBe(3);
  });
});
