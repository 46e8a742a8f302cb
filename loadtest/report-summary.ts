/**
 * The table printed at the end of a load test, for the terminal: one block per
 * comparison, one row per server — requests/s (median of the runs, or seconds for the
 * CPU benchmark), the ratio against the comparison's reference, p99 and bad responses.
 * The full report (every column, the notes) is the .md file written beside the chart.
 */
import type { ComparisonResult, TargetOutcome } from './compare.ts';
import type { LoadTestReport } from './report.ts';
import type { Spread } from './stats.ts';

export function renderSummary(report: LoadTestReport): string {
  const blocks = report.comparisons.map(renderComparison);
  return `${blocks.join('\n')}\n`;
}

function renderComparison(result: ComparisonResult): string {
  const measured = result.outcomes.filter((outcome) => outcome.status === 'measured');
  const others = result.outcomes.filter((outcome) => outcome.status !== 'measured')
    .map((outcome) => `  ${outcome.label}: ${outcome.status}${outcome.reason ? ` — ${outcome.reason}` : ''}`);
  const rows = measured.map((outcome) => rowOf(result, outcome));
  const header = ['server', result.metric === 'wall' ? 'seconds' : 'req/s', result.metric === 'wall' ? 'speed-up' : 'ratio', 'p99 ms', 'bad'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  return [result.title, line(header), ...rows.map(line), ...others].join('\n') + '\n';
}

function rowOf(result: ComparisonResult, outcome: TargetOutcome): string[] {
  const speed = result.metric === 'wall' ? fixed(outcome.wallSec, 2) : whole(outcome.rps);
  const ratio = result.metric === 'wall'
    ? (outcome.speedup ? `${outcome.speedup.median.toFixed(2)}×` : '—')
    : outcome.id === result.referenceId ? 'reference' : outcome.ratio ? `${Math.round(outcome.ratio.median * 100)}%` : '—';
  const bad = outcome.totals.errors + outcome.totals.timeouts + outcome.totals.non2xx + outcome.totals.wrongBody;
  return [outcome.label, speed, ratio, whole(outcome.p99), String(bad)];
}

function whole(value: Spread | undefined): string {
  return value === undefined ? '—' : Math.round(value.median).toLocaleString('en-US');
}

function fixed(value: Spread | undefined, digits: number): string {
  return value === undefined ? '—' : value.median.toFixed(digits);
}
