/**
 * A plain SVG bar chart of one load test, written by hand (no chart library): one panel
 * per comparison, a bar per server at its median, a whisker from min to max. Panels have
 * their own scale: requests/s (longer is better) or wall time (shorter is better).
 */
import type { ComparisonResult } from './compare.ts';
import type { LoadTestReport } from './report.ts';

const WIDTH = 960;
const LABEL_WIDTH = 420;
const BAR_WIDTH = WIDTH - LABEL_WIDTH - 130;
const ROW = 20;
const TITLE = 26;
const GAP = 14;

const COLORS: Record<string, string> = { baseline: '#9aa5b1', interpool: '#2f6fdf', peer: '#e08a2c' };

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function panel(result: ComparisonResult, top: number): { svg: string[]; height: number } {
  const wall = result.metric === 'wall';
  const figures = result.outcomes.map((outcome) => (wall ? outcome.wallSec : outcome.rps));
  const scale = Math.max(...figures.map((figure) => figure?.max ?? 0), 1e-9);
  const unit = wall ? 's (shorter is better)' : 'req/s';
  const svg = [`<text x="8" y="${top + 17}" font-weight="bold">${escape(result.title)} — ${unit}</text>`];
  result.outcomes.forEach((outcome, index) => {
    const y = top + TITLE + index * ROW;
    const figure = figures[index];
    svg.push(`<text x="${LABEL_WIDTH - 8}" y="${y + 14}" text-anchor="end">${escape(outcome.label)}</text>`);
    if (!figure) {
      svg.push(`<text x="${LABEL_WIDTH + 4}" y="${y + 14}" fill="#777">${outcome.status === 'absent' ? 'absent' : 'failed'}: ${escape((outcome.reason ?? '').slice(0, 70))}</text>`);
      return;
    }
    const x = (value: number) => LABEL_WIDTH + (value / scale) * BAR_WIDTH;
    const value = wall ? `${figure.median.toFixed(2)} s` : Math.round(figure.median).toLocaleString('en-US');
    const bad = outcome.totals.errors + outcome.totals.non2xx + outcome.totals.wrongBody;
    svg.push(
      `<rect x="${LABEL_WIDTH}" y="${y + 3}" width="${Math.max(1, x(figure.median) - LABEL_WIDTH).toFixed(1)}" height="${ROW - 6}" fill="${COLORS[outcome.role]}"/>`,
      `<line x1="${x(figure.min).toFixed(1)}" x2="${x(figure.max).toFixed(1)}" y1="${y + ROW / 2}" y2="${y + ROW / 2}" stroke="#222" stroke-width="1.5"/>`,
      `<text x="${(x(figure.max) + 6).toFixed(1)}" y="${y + 14}">${value}${bad ? ` (${bad} bad)` : ''}</text>`,
    );
  });
  return { svg, height: TITLE + result.outcomes.length * ROW + GAP };
}

export function renderSvg(report: LoadTestReport): string {
  const body: string[] = [];
  let top = 44;
  for (const result of report.comparisons) {
    const { svg, height } = panel(result, top);
    body.push(...svg);
    top += height;
  }
  const { meta } = report;
  const caption = `interpool load test ${meta.date}${meta.quick ? ' (quick)' : ''} · ${meta.cpus} CPUs shared with the load generator · median of ${meta.runs} runs, whiskers min–max`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${top + 8}" viewBox="0 0 ${WIDTH} ${top + 8}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="22" font-size="14" font-weight="bold">${escape(caption)}</text>`,
    `<text x="8" y="38" fill="#555">grey: plain Fastify · blue: interpool · orange: peers (gunicorn, uWSGI, Apache mod_wsgi)</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
