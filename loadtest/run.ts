/**
 * `npm run loadtest [-- --quick] [--runs N] [--duration S] [--only LIST]`
 *
 * Runs the load-test plan against servers started here as child processes on
 * 127.0.0.1, prints progress on stderr, and writes loadtest/results/<date>.json, .md
 * and .svg. Bounded: every run has a duration or a request count, every request a
 * timeout, every server a start deadline.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { addBaseline } from './baseline.ts';
import { prepareBuild, type Build } from './build.ts';
import { liveServers, runComparison, summarizeComparison, type ComparisonResult } from './compare.ts';
import { detectFeatures } from './features.ts';
import { measureBoots, summarizeBoot, type BootResult } from './boot.ts';
import { measureMemory, memoryVariants, type MemoryResult } from './memory.ts';
import { bootVariants, buildPlan, pythonAbsentReason } from './plan.ts';
import { Progress } from './progress.ts';
import { writeReport, type LoadTestReport } from './report.ts';
import { renderSummary } from './report-summary.ts';
import { ROOT } from './targets.ts';

const USAGE = `usage: npm run loadtest -- [--quick] [--ref COMMIT] [--runs N] [--duration SECONDS] [--only LIST] [--out DIR]

  --quick           short runs and fewer rows: about a minute
  --ref COMMIT      measure that commit (exported with git archive) instead of the working tree
  --baseline COMMIT also measure that commit, beside every interpool row, in the same comparisons
  --runs N          measured runs per server, at least 3 (default 3)
  --duration S      seconds per timed run (default 5, --quick 1; the issue-2 figure: 10, --quick 1)
  --only LIST       comma-separated sections (issue-2, scenarios, scaling, reload, cpu-benchmark, boot, memory)
                    or comparison ids (scenario-hello, scaling-cpu, cpu-benchmark-ts, ...)
  --out DIR         where to write results (default loadtest/results)
  --render FILE     rewrite FILE's .md and .svg from FILE (a results .json), measuring nothing
`;

function fail(message: string): never {
  process.stderr.write(`loadtest: ${message}\n${USAGE}`);
  process.exit(2);
}

function parseOptions(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        runs: { type: 'string', default: '3' },
        duration: { type: 'string' },
        only: { type: 'string' },
        ref: { type: 'string' },
        baseline: { type: 'string' },
        render: { type: 'string' },
        out: { type: 'string', default: join(ROOT, 'loadtest/results') },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (error) {
    fail((error as Error).message);
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const runs = Number(parsed.runs);
  if (!Number.isInteger(runs) || runs < 3) fail(`--runs must be an integer of at least 3 (every figure is a median of ≥3 runs), got ${JSON.stringify(parsed.runs)}`);
  const duration = parsed.duration === undefined ? undefined : Number(parsed.duration);
  if (duration !== undefined && (!Number.isInteger(duration) || duration < 1 || duration > 120)) fail(`--duration must be a whole number of seconds from 1 to 120, got ${JSON.stringify(parsed.duration)}`);
  const only = parsed.only?.split(',').map((item) => item.trim()).filter(Boolean);
  return { quick: parsed.quick, runs, duration, only, out: parsed.out, ref: parsed.ref, baseline: parsed.baseline, render: parsed.render };
}

function stamp(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}`;
}

/** --render: recompute the summaries of a results file and rewrite its .md and .svg. */
function render(file: string): void {
  const report = JSON.parse(readFileSync(file, 'utf8')) as LoadTestReport;
  report.comparisons = report.comparisons.map(summarizeComparison);
  if (report.boots) report.boots = report.boots.map(summarizeBoot);
  const files = writeReport(report, dirname(file), basename(file, '.json'));
  process.stderr.write(`rewrote ${files.map((written) => relative(process.cwd(), written)).join(', ')}\n`);
}

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  if (options.render) return render(options.render);
  const started = new Date();
  let build;
  try {
    build = prepareBuild(options.ref);
  } catch (error) {
    fail((error as Error).message);
  }
  const features = await detectFeatures(build.root);
  const cpuCount = availableParallelism();
  let plan = buildPlan({ root: build.root, quick: options.quick, runs: options.runs, duration: options.duration, cpus: cpuCount, features });
  // Interpreter start is not in --quick: each Pyodide start takes seconds.
  let measureBoot = !options.quick;
  // Memory and start: not in --quick either (a minute and a half per server).
  let measureMem = !options.quick;
  if (options.only) {
    const known = new Set(plan.flatMap((comparison) => [comparison.id, comparison.section]));
    known.add('boot');
    known.add('memory');
    measureBoot = options.only.includes('boot');
    measureMem = options.only.includes('memory');
    const unknown = options.only.filter((item) => !known.has(item));
    if (unknown.length) fail(`--only: unknown ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
    plan = plan.filter((comparison) => options.only!.includes(comparison.id) || options.only!.includes(comparison.section));
  }
  let baseline: Build | undefined;
  if (options.baseline) {
    try {
      baseline = prepareBuild(options.baseline);
    } catch (error) {
      fail((error as Error).message.replace('--ref', '--baseline'));
    }
    plan = addBaseline(plan, baseline);
  }

  const stopAll = () => { for (const server of liveServers) void server.stop(2000); };
  process.once('SIGINT', () => { process.stderr.write('\nloadtest: interrupted, stopping servers\n'); stopAll(); setTimeout(() => process.exit(130), 2500); });
  process.once('SIGTERM', () => { stopAll(); setTimeout(() => process.exit(143), 2500); });

  const progress = new Progress();
  const loadBefore = loadavg();
  process.stderr.write(`interpool load test of ${build.description}: ${plan.length} comparisons${measureBoot ? ' and interpreter start' : ''}${measureMem ? ' and memory' : ''}, ${options.runs} runs each, ${cpuCount} CPUs shared with the load generator${options.quick ? ', quick' : ''}\n`);
  const comparisons: ComparisonResult[] = [];
  let boots: BootResult[] | undefined;
  let memory: MemoryResult[] | undefined;
  try {
    for (const comparison of plan) comparisons.push(await runComparison(comparison, progress));
    if (measureBoot) boots = await measureBoots(build.root, bootVariants(build.root, features), options.runs, progress);
    if (measureMem) memory = await measureMemory(build.root, memoryVariants(pythonAbsentReason(build.root, 'hello', features), features.nativeAbsent), progress);
  } finally {
    build.dispose();
    baseline?.dispose();
  }

  const base = `${stamp(started)}${options.quick ? '-quick' : ''}`;
  const report: LoadTestReport = {
    meta: {
      date: started.toISOString(),
      command: `npm run loadtest${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
      quick: options.quick,
      runs: options.runs,
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      cpus: cpuCount,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 1024 ** 3),
      loadAverage: loadBefore,
      commit: build.commit,
      dirty: build.dirty,
      measured: build.description,
      features,
      elapsedSec: (Date.now() - started.getTime()) / 1000,
      svgName: `${base}.svg`,
    },
    comparisons,
    ...(boots ? { boots } : {}),
    ...(memory ? { memory } : {}),
    notMeasured: [
      ...(boots ? [] : ['interpreter start (cold, from a snapshot) and RSS per interpreter: the boot section was not run (it is left out of --quick)']),
      ...(memory ? [] : ['RSS idle, per added interpreter, after a load and 30 s later, and a second start: the memory section was not run (it is left out of --quick)']),
      ...(comparisons.some((c) => c.section === 'reload') ? [] : ['requests during a reload under load: the reload section was not run (it is left out of --quick)']),
    ],
  };
  mkdirSync(options.out, { recursive: true });
  const files = writeReport(report, options.out, base);
  progress.done();
  process.stdout.write(`\n${renderSummary(report)}`);
  const shown = files.map((file) => relative(process.cwd(), file));
  process.stderr.write(`\nthe chart: ${shown.find((file) => file.endsWith('.svg')) ?? 'none'}\nthe full report: ${shown.filter((file) => !file.endsWith('.svg')).join(', ')}\n`);
}

await main(process.argv.slice(2));
