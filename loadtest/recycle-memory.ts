/**
 * Memory is given back: recycle 1,000 interpreters under load (`--max-requests 1`, a
 * Python app and a JS app side by side, every request retiring the interpreter that
 * served it) and compare the server process's RSS at the end with its RSS after the
 * first 100 recycles. Passes when the end is within 10% of that value.
 *
 *   npm run loadtest:recycle [-- --recycles 1000 --concurrency 4]
 *
 * Writes loadtest/results/recycle-<date>.json. Load goes to 127.0.0.1 only.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { readRestingRssMiB, readTreeRss } from './proc.ts';
import { findFreePort } from './server-process.ts';

const { values } = parseArgs({
  options: {
    recycles: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '4' },
    'first-checkpoint': { type: 'string', default: '100' },
  },
});
const total = Number(values.recycles);
const concurrency = Number(values.concurrency);
const checkpoint = Number(values['first-checkpoint']);

const port = await findFreePort();
const server = spawn(process.execPath, [
  'bin/interpool.js', 'serve', '/js=apps/hello.ts', '/py=apps/hello.py',
  '--workers', '2', '--max-requests', '1', '--log-level', 'warn', '--bind', `127.0.0.1:${port}`,
], { stdio: ['ignore', 'ignore', 'inherit'] });
const base = `http://127.0.0.1:${port}`;

async function waitUntilServing(): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`${base}/js/`).then((r) => r.ok, () => false);
    if (ok) return;
    await sleep(100);
  }
  throw new Error('the server did not start');
}

interface Sample { recycles: number; rssMiB: number; seconds: number }
const samples: Sample[] = [];
let done = 0;
let failures = 0;
const started = performance.now();
const rssMiB = () => Math.round((readTreeRss(server.pid!) / 1024 / 1024) * 10) / 10;

/** Recycle until `target` requests (one recycle each) have been served, `concurrency` at a time. */
async function recycleUntil(target: number): Promise<void> {
  const lanes = Array.from({ length: concurrency }, async (_, lane) => {
    while (done < target) {
      const path = (done + lane) % 2 === 0 ? '/js/' : '/py/';
      done++;
      const response = await fetch(`${base}${path}`).catch(() => undefined);
      const body = await response?.text();
      if (response?.status !== 200 || !body?.startsWith('Hello')) failures++;
      if (done % 50 === 0) {
        samples.push({ recycles: done, rssMiB: rssMiB(), seconds: Math.round((performance.now() - started) / 100) / 10 });
        process.stdout.write(`recycles ${done}/${total}  rss ${samples.at(-1)!.rssMiB} MiB  failures ${failures}\n`);
      }
    }
  });
  await Promise.all(lanes);
}

/** Checkpoints are read once the replacements have booted and the process is idle. */
const restingRss = () => readRestingRssMiB(server.pid!, 3000, 400);

await waitUntilServing();
done = 1;
await recycleUntil(checkpoint);
const first = await restingRss();
process.stdout.write(`at rest after ${checkpoint} recycles: ${first} MiB\n`);
await recycleUntil(total);
const final = await restingRss();
server.kill('SIGTERM');

const ratio = final / first;
const result = {
  date: new Date().toISOString(),
  command: `npm run loadtest:recycle -- --recycles ${total} --concurrency ${concurrency}`,
  recycles: total, failures, rssAfterFirstMiB: first, firstCheckpoint: checkpoint, rssAtEndMiB: final,
  ratio: Math.round(ratio * 1000) / 1000, withinTenPercent: ratio <= 1.1, samples,
};
mkdirSync('loadtest/results', { recursive: true });
const file = `loadtest/results/recycle-${result.date.slice(0, 10)}.json`;
writeFileSync(file, JSON.stringify(result, null, 2));
process.stdout.write(`\nRSS after ${checkpoint} recycles: ${first} MiB; after ${total}: ${final} MiB (×${result.ratio}); failures: ${failures}\n` +
  `${result.withinTenPercent ? 'PASS' : 'FAIL'}: end within 10% of the first checkpoint. Wrote ${file}\n`);
process.exit(result.withinTenPercent && failures === 0 ? 0 : 1);
