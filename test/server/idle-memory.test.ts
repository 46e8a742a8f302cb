// The main thread gives its spare heap back once the server goes idle (issue 18): a load
// grows its young generation, and V8 alone kept it committed long after the load.
import { once } from 'node:events';
import autocannon from 'autocannon';
import { describe, expect, it } from 'vitest';
import { startChild, waitFor } from './support.ts';

const MiB = 1024 * 1024;

/**
 * The admin is read four times a second: the server counts as idle only when its event
 * loop ran less than 2% of a second, and waitFor's default 20 ms polling of the admin
 * would keep it busier than that.
 */
const ADMIN_POLL_MS = 250;

describe('the main thread after a load', () => {
  it('shrinks its heap back once idle', async () => {
    const server = await startChild(['apps/hello.ts', '--workers', '1']);
    const heapTotal = async () => {
      const stats = await (await fetch(`${server.url}/_interpool/api/stats`)).json() as { process: { heapTotalBytes: number } };
      return stats.process.heapTotalBytes / MiB;
    };
    try {
      const idle = await waitFor(async () => { const now = await heapTotal(); return now < 24 && now; }, 15_000, 'the idle heap', ADMIN_POLL_MS);
      await autocannon({ url: server.url, connections: 32, duration: 2 });
      const loaded = await heapTotal();
      // The load grew it (the young generation: 16 -> 32 MB and more).
      expect(loaded).toBeGreaterThan(idle + 8);
      // A memory-reducing collection in the first idle second.
      await waitFor(async () => (await heapTotal()) < idle + 4, 15_000, `the main thread's heap (${loaded.toFixed(1)} MiB after the load) to shrink back near ${idle.toFixed(1)} MiB`, ADMIN_POLL_MS);
    } finally {
      const exited = once(server.child, 'exit');
      server.child.kill('SIGTERM');
      await exited;
    }
  });
});
