/**
 * The Markdown report of one load test: the issue-2 figure first, then every scenario
 * with the peers, the scaling curve and the CPU benchmark. Every figure is a median with
 * its min–max; ratios are measured round by round within the same run.
 */
import { STALL_MS, type ComparisonResult, type TargetOutcome } from './compare.ts';
import type { BootResult } from './boot.ts';
import type { LoadTestReport } from './report.ts';
import { summarize, type Spread } from './stats.ts';
import { renderMemorySection } from './memory.ts';

const TARGET_SHARE = 0.35;
/** Other processes using more than this many CPUs during a run make it noisy. */
const NOISY_OTHER_CPU = 0.3;

function number(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function spread(value: Spread | undefined, digits = 0, unit = ''): string {
  if (!value) return '—';
  return `${number(value.median, digits)}${unit} (${number(value.min, digits)}–${number(value.max, digits)})`;
}

function percent(value: Spread | undefined): string {
  if (!value) return '—';
  const p = (x: number) => `${Math.round(x * 100)}%`;
  return `**${p(value.median)}** (${p(value.min)}–${p(value.max)})`;
}

function times(value: Spread | undefined): string {
  if (!value) return '—';
  return `**${value.median.toFixed(2)}×** (${value.min.toFixed(2)}–${value.max.toFixed(2)})`;
}

function bad(outcome: TargetOutcome): string {
  const { errors, non2xx, wrongBody } = outcome.totals;
  const text = `${number(errors)} / ${number(non2xx)} / ${number(wrongBody)}`;
  return errors + non2xx + wrongBody > 0 ? `**${text}**` : text;
}

function mib(value: number | undefined): string {
  return value === undefined ? '—' : number(value);
}

/** Medians of the CPUs' worth of time used by the server, the load generator, the rest. */
function cpuShare(outcome: TargetOutcome): string {
  const { server, loadGenerator, other } = outcome.cpu ?? {};
  if (!server || !loadGenerator || !other) return '—';
  const text = `${server.median.toFixed(2)} · ${loadGenerator.median.toFixed(2)} · ${other.median.toFixed(2)}`;
  return other.max > NOISY_OTHER_CPU ? `${text} ⚠` : text;
}

function noiseNote(result: ComparisonResult): string[] {
  const noisy = result.outcomes.filter((outcome) => (outcome.cpu?.other?.max ?? 0) > NOISY_OTHER_CPU);
  if (noisy.length === 0) return [];
  return [`⚠ Other processes used more than ${NOISY_OTHER_CPU} CPU during some runs of: ${noisy.map((o) => o.label).join('; ')} — those figures are noisier than the rest.`, ''];
}

function notMeasured(outcome: TargetOutcome, columns: number): string {
  const why = outcome.status === 'absent' ? `absent: ${outcome.reason}` : `FAILED: ${outcome.reason}`;
  return `| ${outcome.label} | ${why} |${' |'.repeat(columns - 2)}`;
}

function throughputTable(result: ComparisonResult, ratioHeader: string): string[] {
  const header = `| server | app | req/s median (min–max) | ${ratioHeader} | req per server CPU-s | p50 ms | p99 ms | errors / non-2xx / wrong body | CPUs: server · load gen · other | RSS MiB idle → peak | ready in |`;
  const lines = [header, '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|'];
  for (const outcome of result.outcomes) {
    if (outcome.status !== 'measured') {
      lines.push(notMeasured(outcome, 11));
      continue;
    }
    lines.push(`| ${outcome.label} | ${outcome.appFile ?? ''} | ${spread(outcome.rps)} | ${percent(outcome.ratio)} | ${spread(outcome.perServerCpuSec)} | ${spread(outcome.p50)} | ${spread(outcome.p99)} | ${bad(outcome)} | ${cpuShare(outcome)} | ${mib(outcome.rssIdleMiB)} → ${mib(outcome.rssPeakMiB)} | ${outcome.readyMs === undefined ? '—' : `${number(outcome.readyMs)} ms`} |`);
  }
  return [...lines, '', ...noiseNote(result)];
}

function referenceLabel(result: ComparisonResult): string {
  return result.outcomes.find((outcome) => outcome.id === result.referenceId)?.label ?? 'the reference';
}

function issue2(result: ComparisonResult, report: LoadTestReport): string[] {
  const lines = [`## hello through the pool vs plain Fastify (issue 2)`, ''];
  lines.push(`\`autocannon -c ${result.shape.connections} -d ${result.shape.duration}\` on \`GET /\`, ${result.runs} runs per server, interleaved round by round; ratio = interpool ÷ plain Fastify within each round, then median (min–max).`, '');
  lines.push(...throughputTable(result, 'vs plain Fastify'), '');
  for (const outcome of result.outcomes.filter((o) => o.role === 'interpool' && o.ratio)) {
    const met = outcome.ratio!.median >= TARGET_SHARE;
    const efficiency = outcome.efficiencyRatio ? `; per CPU-second the server used, ${percent(outcome.efficiencyRatio)} of plain Fastify's requests` : '';
    lines.push(`- ${outcome.label}: ${Math.round(outcome.ratio!.median * 100)}% of plain Fastify's requests/s — target ≥${TARGET_SHARE * 100}% ${met ? 'met' : '**not met**'}${efficiency}.`);
  }
  lines.push('', `Command: \`${report.meta.command}\``, '');
  return lines;
}

function scenarioSection(results: ComparisonResult[]): string[] {
  const lines = ['## Scenarios, with the peers', ''];
  lines.push('Each scenario: interpool serving the TypeScript app and the Python app with the same logic, and the peers serving the Python file, all in the same run. 32 connections. Ratios are against the reference named under each table (interpool Python when it is measured, else interpool TypeScript).', '');
  for (const result of results) {
    lines.push(`### ${result.title}`, '', `\`${result.request}\`, ${result.shape.duration} s × ${result.runs} runs per server.`, '');
    lines.push(...throughputTable(result, 'vs reference'), '', `Reference: ${referenceLabel(result)}.`, '');
  }
  return lines;
}

function scalingSection(results: ComparisonResult[]): string[] {
  const lines = ['## Scaling: requests/s at 1..N workers', ''];
  for (const result of results) {
    lines.push(`### ${result.title}`, '');
    lines.push(...throughputTable(result, 'vs 1 worker'), '');
    const measured = result.outcomes.filter((o) => o.status === 'measured' && o.rssIdleMiB !== undefined);
    if (measured.length >= 2) {
      const first = measured[0]!;
      const last = measured.at(-1)!;
      const workers = (o: TargetOutcome) => Number(/w(\d+)/.exec(o.id)?.[1] ?? 0);
      const slope = (last.rssIdleMiB! - first.rssIdleMiB!) / (workers(last) - workers(first));
      lines.push(`RSS per interpreter (idle RSS slope from ${workers(first)} to ${workers(last)} workers): about ${number(slope, 1)} MiB.`, '');
    }
  }
  return lines;
}

function reloadSection(results: ComparisonResult[]): string[] {
  const lines = ['## Reload under load', ''];
  for (const result of results) {
    lines.push(`### ${result.title}`, '');
    lines.push(`Each server: \`autocannon -c ${result.shape.connections} -d ${result.shape.duration}\`, ${result.runs} runs; the reloading ones get ${result.events?.signal} at ${result.events?.atSec.join(' s and ')} s of every run. A reload must refuse nothing: every request answered 2xx with the right body.`, '');
    lines.push('| server | req/s median (min–max) | errors / non-2xx / wrong body (all runs) | p99 ms | slowest response ms | longest time without a response ms |', '|---|--:|--:|--:|--:|--:|');
    for (const outcome of result.outcomes) {
      if (outcome.status !== 'measured') {
        lines.push(notMeasured(outcome, 6));
        continue;
      }
      lines.push(`| ${outcome.label} | ${spread(outcome.rps)} | ${bad(outcome)} | ${spread(outcome.p99)} | ${spread(outcome.maxLatencyMs)} | ${spread(outcome.longestPauseMs)} |`);
    }
    lines.push('', ...noiseNote(result));
  }
  return lines;
}

function cpuSection(results: ComparisonResult[]): string[] {
  const lines = ['## The CPU benchmark: the same work four ways', ''];
  lines.push('A fixed number of CPU-bound requests; wall time from the first request to the last response; speed-up = wall time of (a) ÷ wall time of the row, within each round. The proof of concept this project comes from measured, on 4 CPUs: sequential 1.99 s, threads 3.15 s, multiprocessing 560 ms, subinterpreters 583 ms.', '');
  for (const result of results) {
    lines.push(`### ${result.title}`, '');
    lines.push('| way | wall s median (min–max) | speed-up vs (a) | errors / non-2xx / wrong body | CPUs: server · load gen · other | RSS MiB idle → peak |', '|---|--:|--:|--:|--:|--:|');
    for (const outcome of result.outcomes) {
      if (outcome.status !== 'measured') {
        lines.push(notMeasured(outcome, 6));
        continue;
      }
      lines.push(`| ${outcome.label} | ${spread(outcome.wallSec, 2)} | ${times(outcome.speedup)} | ${bad(outcome)} | ${cpuShare(outcome)} | ${mib(outcome.rssIdleMiB)} → ${mib(outcome.rssPeakMiB)} |`);
    }
    lines.push('', ...noiseNote(result));
  }
  return lines;
}

function bootSection(boots: BootResult[]): string[] {
  const lines = ['## Interpreter start and memory', ''];
  lines.push('Each app served with `--workers 2` at `--log-level info`, started afresh each time; boot times are the sums of the stages each interpreter reports in its "interpreter booted" line, without time spent waiting for the snapshot another interpreter makes (a first interpreter boots cold and makes the snapshot, the others wait for it and restore it); "answers in" is spawn to first correct response. RSS per interpreter = idle RSS with 2 workers − idle RSS with 1.', '');
  lines.push('| app | cold boot ms | snapshot start ms | server answers in ms | idle RSS MiB, 1 → 2 workers | RSS per interpreter MiB |', '|---|--:|--:|--:|--:|--:|');
  for (const boot of boots) {
    if (boot.status !== 'measured') {
      lines.push(`| ${boot.label} | ${boot.status === 'absent' ? 'absent' : 'FAILED'}: ${boot.reason} | | | | |`);
      continue;
    }
    const rss2 = summarize(boot.spawns.map((spawn) => spawn.rssIdleMiB))?.median;
    lines.push(`| ${boot.label} | ${spread(boot.coldMs)} | ${spread(boot.snapshotMs)} | ${spread(boot.readyMs)} | ${mib(boot.rssOneWorkerMiB)} → ${mib(rss2)} | ${mib(boot.rssPerInterpreterMiB)} |`);
  }
  lines.push('');
  for (const boot of boots.filter((b) => b.status === 'measured')) {
    const stages = (record: Record<string, number> | undefined) => Object.entries(record ?? {}).map(([name, ms]) => `${name} ${number(ms)} ms`).join(' · ');
    if (boot.coldStages) lines.push(`- ${boot.label}, cold: ${stages(boot.coldStages)}`);
    if (boot.snapshotStages) lines.push(`- ${boot.label}, from the snapshot: ${stages(boot.snapshotStages)}`);
  }
  return [...lines, ''];
}

function oddities(report: LoadTestReport): string[] {
  const lines = ['## Anything odd under load', ''];
  const entries = report.comparisons.flatMap((result) => result.outcomes.filter((o) => o.status === 'measured').map((outcome) => ({ result, outcome })));
  for (const { result, outcome } of entries) {
    const where = `${result.title} · ${outcome.label}`;
    const { errors, timeouts, non2xx, wrongBody } = outcome.totals;
    if (errors + non2xx + wrongBody > 0) {
      const codes = Object.entries(outcome.statusCodes).filter(([code]) => !code.startsWith('2')).map(([code, count]) => `${count}× ${code}`).join(', ');
      lines.push(`- ${where}: ${errors} errors (${timeouts} timeouts), ${non2xx} non-2xx${codes ? ` (${codes})` : ''}, ${wrongBody} wrong bodies.`);
    }
    const stalls = outcome.runs.filter((run) => run.longestPauseMs >= STALL_MS);
    if (stalls.length > 0) {
      lines.push(`- ${where}: ${stalls.length} of ${outcome.runs.length} runs had no response for ${stalls.map((run) => `${(run.longestPauseMs / 1000).toFixed(1)} s`).join(', ')}.`);
    }
    if (outcome.rssIdleMiB && outcome.rssPeakMiB && outcome.rssPeakMiB > 2 * outcome.rssIdleMiB) {
      lines.push(`- ${where}: RSS grew from ${mib(outcome.rssIdleMiB)} MiB idle to ${mib(outcome.rssPeakMiB)} MiB under load (${mib(outcome.rssAfterMiB)} MiB right after).`);
    }
    if (outcome.serverLog.count > 0) {
      lines.push(`- ${where}: the server wrote ${outcome.serverLog.count} log lines while measured (it runs at warning level); first: \`${(outcome.serverLog.sample[0] ?? '').replace(/`/g, "'").slice(0, 300)}\``);
    }
  }
  if (lines.length === 2) lines.push('Nothing: no errors, non-2xx, wrong bodies, stalls, memory doubling or server output.');
  return [...lines, ''];
}

function notYetMeasured(report: LoadTestReport): string[] {
  const lines = ['## Not measured in this build', ''];
  const absent = new Map<string, Set<string>>();
  for (const result of report.comparisons) {
    for (const outcome of result.outcomes.filter((o) => o.status !== 'measured')) {
      const reason = outcome.reason ?? '';
      absent.set(reason, (absent.get(reason) ?? new Set()).add(outcome.label));
    }
  }
  for (const [reason, labels] of absent) lines.push(`- ${[...labels].join('; ')}: ${reason}`);
  for (const item of report.notMeasured) lines.push(`- ${item}`);
  return [...lines, ''];
}

export function renderMarkdown(report: LoadTestReport): string {
  const { meta } = report;
  const lines = [
    `# interpool load test — ${meta.date}${meta.quick ? ' (quick)' : ''}`, '',
    `Machine: ${meta.cpus} CPUs (${meta.cpuModel}), ${meta.memoryGiB} GiB, ${meta.platform}; Node ${meta.node}; measured: ${meta.measured}.`,
    `The load generator (autocannon, in the harness process) runs on the same ${meta.cpus} CPUs as the server it loads, so absolute figures are low and noisy: read the ratios, which are measured round by round in the same run. Every figure is the median of ${meta.runs} runs, with min–max. Only 2xx responses with the expected body count as requests; errors, non-2xx and wrong bodies are counted and shown.`, '',
    `Command: \`${meta.command}\` · took ${Math.round(meta.elapsedSec)} s · load average before: ${meta.loadAverage.map((x) => x.toFixed(2)).join(' ')}`, '',
    '![requests per second](' + meta.svgName + ')', '',
  ];
  const section = (name: ComparisonResult['section']) => report.comparisons.filter((result) => result.section === name);
  for (const result of section('issue-2')) lines.push(...issue2(result, report));
  if (section('scenarios').length) lines.push(...scenarioSection(section('scenarios')));
  if (section('scaling').length) lines.push(...scalingSection(section('scaling')));
  if (section('reload').length) lines.push(...reloadSection(section('reload')));
  if (section('cpu-benchmark').length) lines.push(...cpuSection(section('cpu-benchmark')));
  if (report.boots) lines.push(...bootSection(report.boots));
  if (report.memory) lines.push(...renderMemorySection(report.memory));
  lines.push(...oddities(report), ...notYetMeasured(report));
  return lines.join('\n');
}
