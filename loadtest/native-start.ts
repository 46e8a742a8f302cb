/**
 * How long the native engine takes to start an interpreter (issue 19: "start of an
 * interpreter ≤ 50 ms plus the app's own import"), from the boot reports a server logs:
 * `interpool serve apps/hello.py --python native --workers W` started ROUNDS times, the
 * stages of its first interpreters; then, with `--recycles N`, the same server with
 * `--max-requests 1` under sequential requests, the stages of N replacements. With
 * `--ref DIR` (another checkout, its addon built) each round runs both trees, one after
 * the other, so that the machine's load falls on both alike. Medians and ranges per stage.
 *
 *   npm run loadtest:native-start [-- --rounds 6 --workers 1 --recycles 3]
 *                                 [--cpython /usr/bin/python3.11] [--ref /tmp/base]
 *
 * A benchmark, not a test: it prints; exit 0.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    workers: { type: 'string', default: '1' },
    recycles: { type: 'string', default: '3' },
    cpython: { type: 'string' },
    ref: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const WORKERS = Number(values.workers);
const RECYCLES = Number(values.recycles);
const TREES = [resolve('.'), ...(values.ref ? [resolve(values.ref)] : [])];
const BOOTED = 'interpreter booted';

type Stages = Record<string, number>;

/** One server from `root`: the stages of its first `wanted` boot reports, or of its replacements. */
async function serve(root: string, extra: string[], wanted: number, drive: boolean): Promise<Stages[]> {
  const args = [
    `${root}/bin/interpool.js`, 'serve', `/=${root}/apps/hello.py`, '--python', 'native', '--workers', String(WORKERS),
    '--bind', '127.0.0.1:0', '--log-level', 'info', ...(values.cpython ? ['--cpython', values.cpython] : []), ...extra,
  ];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const boots: Stages[] = [];
  let port = 0;
  let stderr = '';
  child.stderr!.on('data', (data) => (stderr += String(data)));
  const done = new Promise<void>((resolveDone, reject) => {
    const timer = setTimeout(() => reject(new Error(`${boots.length} of ${wanted} boots in 60 s\n${stderr}`)), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: { msg?: string; stages?: Array<{ name: string; ms: number }> };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      const listening = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(entry.msg ?? '');
      if (listening) port = Number(listening[1]);
      if (entry.msg === BOOTED && entry.stages) boots.push(Object.fromEntries(entry.stages.map((stage) => [stage.name, stage.ms])));
      if (boots.length >= wanted) {
        clearTimeout(timer);
        resolveDone();
      }
    });
    child.once('exit', () => reject(new Error(`the server exited\n${stderr}`)));
  });
  // Each request ends the interpreter that served it: the next one waits for its replacement.
  let finished = false;
  const requests = (async () => {
    while (drive && !finished) {
      if (port === 0) await new Promise((wait) => setTimeout(wait, 20));
      else await fetch(`http://127.0.0.1:${port}/`).then((response) => response.text()).catch(() => '');
    }
  })();
  try {
    await done;
  } finally {
    finished = true;
    child.kill('SIGTERM');
    await requests;
  }
  return drive ? boots.slice(WORKERS, wanted) : boots.slice(0, wanted);
}

function median(numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function summary(boots: Stages[]): string {
  const names = [...new Set(boots.flatMap((boot) => Object.keys(boot)))];
  return names.map((name) => {
    const times = boots.map((boot) => boot[name]).filter((ms): ms is number => ms !== undefined);
    const range = `${Math.round(Math.min(...times))}-${Math.round(Math.max(...times))}`;
    return `${name} ${median(times).toFixed(1)} ms [${range}]${times.length < boots.length ? ` (${times.length} of ${boots.length})` : ''}`;
  }).join(' · ');
}

const first = new Map<string, Stages[]>(TREES.map((tree) => [tree, []]));
const replaced = new Map<string, Stages[]>(TREES.map((tree) => [tree, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const tree of TREES) {
    first.get(tree)!.push(...await serve(tree, [], WORKERS, false));
    if (RECYCLES > 0) replaced.get(tree)!.push(...await serve(tree, ['--max-requests', '1', '--max-requests-jitter', '0'], WORKERS + RECYCLES, true));
  }
}
for (const tree of TREES) {
  console.log(`${tree}, first interpreters (${first.get(tree)!.length}): ${summary(first.get(tree)!)}`);
  if (RECYCLES > 0) console.log(`${tree}, replacements (${replaced.get(tree)!.length}): ${summary(replaced.get(tree)!)}`);
}
