/**
 * The native engine's memory across recycles (issue 19: "a recycled interpreter gives its
 * memory back: 1,000 recycles under load, RSS within 10% of its value after the first
 * 100"). For each CPython the native engine is built for, and each isolation it offers
 * (own GIL, shared GIL), a server runs apps/hello.py with `--max-requests 1` (every
 * request ends the subinterpreter that served it) under `--concurrency` lanes of load;
 * the server's RSS at rest after the first checkpoint and at the end are compared.
 *
 * Beside each own-GIL row, the same CPython alone (no interpool, no Node) creates and
 * destroys as many own-GIL interpreters through its `_interpreters` module: its RSS
 * growth per end is CPython's own, and the server's is compared with it.
 *
 *   npm run loadtest:native-recycle [-- --recycles 1000 --concurrency 2 --seconds 300]
 *                                   [--cpython 3.13] [--isolation own|shared]
 *
 * Bounded: each server row stops at --seconds, whatever it reached. A benchmark, not a
 * test: it prints and writes loadtest/results/native-recycle-<date>-<HHMM>.json; exit 0.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { listNativeBuilds, type NativeBuild } from '../native/builds.ts';
import { readRestingRssMiB, readTreeRss } from './proc.ts';
import { findFreePort } from './server-process.ts';

const { values } = parseArgs({
  options: {
    recycles: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '2' },
    'first-checkpoint': { type: 'string', default: '100' },
    seconds: { type: 'string', default: '300' },
    // Only these rows: a CPython version (3.13) and an isolation (own, shared).
    cpython: { type: 'string' },
    isolation: { type: 'string' },
  },
});
const total = Number(values.recycles);
const concurrency = Number(values.concurrency);
const checkpoint = Number(values['first-checkpoint']);
const limitMs = Number(values.seconds) * 1000;

interface Row {
  cpython: string;
  isolation: 'own GIL' | 'shared GIL';
  recycles: number;
  failures: number;
  rssAfterFirstMiB: number;
  rssAtEndMiB: number;
  ratio: number;
  withinTenPercent: boolean;
  /** RSS growth per recycle between the checkpoints. */
  perRecycleMiB: number;
  /** The same CPython alone, creating and destroying interpreters of this isolation. */
  cpythonAlonePerEndMiB: number | null;
  stoppedAtLimit: boolean;
}

const MiB = 1024 * 1024;
const round = (value: number, places = 1) => Math.round(value * 10 ** places) / 10 ** places;

async function measureServer(build: NativeBuild, isolation: Row['isolation']): Promise<Row> {
  const port = await findFreePort();
  const server = spawn(process.execPath, [
    'bin/interpool.js', 'serve', '/=apps/hello.py', '--python', 'native', '--cpython', build.executable,
    ...(isolation === 'shared GIL' && Number(build.version.split('.')[1]) >= 12 ? ['--python-isolation', 'shared-gil'] : []),
    '--workers', '2', '--max-requests', '1', '--log-level', 'warn', '--bind', `127.0.0.1:${port}`,
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}/`;
  const rssMiB = () => round(readTreeRss(server.pid!) / MiB);
  const started = performance.now();
  let done = 0;
  let failures = 0;
  const outOfTime = () => performance.now() - started > limitMs;

  for (let i = 0; ; i++) {
    if (await fetch(base).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error(`the server for CPython ${build.version} (${isolation}) did not start`);
    await sleep(100);
  }
  done = 1;
  const recycleUntil = (target: number) => Promise.all(Array.from({ length: concurrency }, async () => {
    while (done < target && !outOfTime()) {
      done++;
      const response = await fetch(base).catch(() => undefined);
      const body = await response?.text();
      if (response?.status !== 200 || !body?.startsWith('Hello')) failures++;
      if (done % 100 === 0) process.stdout.write(`  CPython ${build.version} ${isolation}: ${done}/${total} recycles, rss ${rssMiB()} MiB, failures ${failures}\n`);
    }
  }));
  // At rest: under load the RSS swings by the interpreters booting at that moment.
  const restingRss = () => readRestingRssMiB(server.pid!, 2000, 300);

  await recycleUntil(checkpoint);
  const first = await restingRss();
  const atFirst = done;
  await recycleUntil(total);
  const final = await restingRss();
  server.kill('SIGTERM');
  const ratio = final / first;
  return {
    cpython: build.version, isolation, recycles: done, failures,
    rssAfterFirstMiB: first, rssAtEndMiB: final, ratio: round(ratio, 3), withinTenPercent: ratio <= 1.1,
    perRecycleMiB: done > atFirst ? round((final - first) / (done - atFirst), 3) : 0,
    cpythonAlonePerEndMiB: null, stoppedAtLimit: done < total,
  };
}

/** CPython by itself: create and destroy `count` interpreters, RSS growth per end (3.12+ only). */
function measureCpythonAlone(build: NativeBuild, isolation: Row['isolation'], count: number): number | null {
  if (Number(build.version.split('.')[1]) < 13) return null;  // _interpreters (with configs) is 3.13's
  const config = isolation === 'own GIL' ? 'isolated' : 'legacy';
  const script = [
    'import _interpreters',
    "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * 4096",
    `for _ in range(20): _interpreters.destroy(_interpreters.create('${config}'))`,
    'before = rss()',
    `for _ in range(${count}): _interpreters.destroy(_interpreters.create('${config}'))`,
    `print((rss() - before) / ${count})`,
  ].join('\n');
  const run = spawnSync(build.executable, ['-c', script], { encoding: 'utf8', timeout: 120_000 });
  return run.status === 0 ? round(Number(run.stdout.trim()) / MiB, 3) : null;
}

const rows: Row[] = [];
for (const build of listNativeBuilds()) {
  if (values.cpython !== undefined && values.cpython !== build.version) continue;
  const isolations: Row['isolation'][] = Number(build.version.split('.')[1]) >= 12 ? ['own GIL', 'shared GIL'] : ['shared GIL'];
  for (const isolation of isolations) {
    if (values.isolation !== undefined && !isolation.startsWith(values.isolation)) continue;
    process.stdout.write(`CPython ${build.version} (${build.executable}), ${isolation}:\n`);
    const row = await measureServer(build, isolation);
    row.cpythonAlonePerEndMiB = measureCpythonAlone(build, isolation, Math.min(300, total));
    rows.push(row);
  }
}

const result = {
  date: new Date().toISOString(),
  command: `npm run loadtest:native-recycle -- --recycles ${total} --concurrency ${concurrency} --seconds ${limitMs / 1000}`
    + `${values.cpython ? ` --cpython ${values.cpython}` : ''}${values.isolation ? ` --isolation ${values.isolation}` : ''}`,
  firstCheckpoint: checkpoint,
  rows,
};
mkdirSync('loadtest/results', { recursive: true });
// One file per run (YYYY-MM-DD-HHMM, as loadtest/run.ts names its reports).
const file = `loadtest/results/native-recycle-${result.date.slice(0, 10)}-${result.date.slice(11, 16).replace(':', '')}.json`;
writeFileSync(file, JSON.stringify(result, null, 2));
process.stdout.write('\n| CPython | isolation | recycles | RSS after first | RSS at end | ratio | MiB per recycle | CPython alone, MiB per end |\n|---|---|---|---|---|---|---|---|\n');
for (const row of rows) {
  process.stdout.write(`| ${row.cpython} | ${row.isolation} | ${row.recycles}${row.stoppedAtLimit ? ' (time limit)' : ''} | ${row.rssAfterFirstMiB} MiB | ${row.rssAtEndMiB} MiB | ×${row.ratio} | ${row.perRecycleMiB} | ${row.cpythonAlonePerEndMiB ?? '—'} |\n`);
}
process.stdout.write(`\nWrote ${file}\n`);
