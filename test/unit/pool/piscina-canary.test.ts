/**
 * What server/pool/piscina-adapter.ts relies on in piscina, checked against the piscina
 * installed: if an upgrade changes one of these, this fails before request bodies go
 * missing in production. Real piscina pools, one thread each.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { afterEach, describe, expect, it } from 'vitest';

const WORKER = fileURLToPath(new URL('../../fixtures/piscina/body-length.mjs', import.meta.url));

interface Answer { length: number; symbols: number }

describe('piscina, as the pool adapter relies on it', () => {
  let pool: Piscina | undefined;
  afterEach(async () => {
    await pool?.destroy();
    pool = undefined;
  });

  it('posts a task with the very transferList array it was given: emptied in the balancer, the body is copied, not transferred', async () => {
    const seen: unknown[] = [];
    pool = new Piscina({
      filename: WORKER, minThreads: 1, maxThreads: 1, atomics: 'async',
      loadBalancer: (task, workers) => {
        const placed = (task as unknown as Record<symbol, { transferList: ArrayBuffer[] }>)[Piscina.queueOptionsSymbol];
        seen.push(placed);
        // What the adapter does for an offered request (PiscinaAdapter.keepBody).
        placed.transferList.length = 0;
        return workers[0] ?? null;
      },
    });
    const body = new Uint8Array([1, 2, 3, 4]);
    const transferList = [body.buffer as ArrayBuffer];
    const task = { body, [Piscina.queueOptionsSymbol]: { transferList } };
    const answer = await pool.run(task, { transferList }) as Answer;
    expect(seen).toHaveLength(1);
    expect(answer).toEqual({ length: 4, symbols: 0 });
    // Not detached: it stayed with the main thread, to be sent again if need be.
    expect(body.byteLength).toBe(4);
  });

  it('and transfers the body when the array is left as it is', async () => {
    pool = new Piscina({ filename: WORKER, minThreads: 1, maxThreads: 1, atomics: 'async', loadBalancer: (_task, workers) => workers[0] ?? null });
    const body = new Uint8Array([1, 2, 3, 4]);
    const answer = await pool.run({ body }, { transferList: [body.buffer as ArrayBuffer] }) as Answer;
    expect(answer.length).toBe(4);
    expect(body.byteLength).toBe(0);
  });

  it('hands out each worker\'s live view at workerCreate: its currentUsage counts the tasks it holds', async () => {
    pool = new Piscina({ filename: WORKER, minThreads: 1, maxThreads: 1, atomics: 'async' });
    const view = await new Promise<{ id: number; currentUsage: number }>((resolve) => pool!.once('workerCreate', resolve));
    expect(view.id).toBe(pool.threads[0]!.threadId);
    const running = pool.run({});
    expect(view.currentUsage).toBe(1);
    await running;
    expect(view.currentUsage).toBe(0);
  });
});
