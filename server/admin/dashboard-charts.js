// The dashboard's charts: a sparkline of requests per second in every app row (inline
// SVG, redrawn each poll), and the two uPlot charts of an expanded app (built on first
// expansion, fed the five-minute history each poll, resized with the window).
/* global uPlot */
import { svg } from './dashboard-dom.js';

const SPARK = { width: 120, height: 24, seconds: 120 };
const CHART_HEIGHT = 150;

/** An empty sparkline; the label is filled by updateSparkline. */
export function buildSparkline() {
  const node = svg('svg', { class: 'sparkline', width: SPARK.width, height: SPARK.height, viewBox: `0 0 ${SPARK.width} ${SPARK.height}`, role: 'img' });
  const area = svg('polygon', { class: 'spark-area' });
  const line = svg('polyline', { class: 'spark-line' });
  node.append(area, line);
  return { node, area, line };
}

/** Draw the last two minutes of `requests` (one count per second). */
export function updateSparkline(spark, requests) {
  const points = requests.slice(-SPARK.seconds);
  const peak = Math.max(1, ...points);
  const step = SPARK.width / (SPARK.seconds - 1);
  const offset = SPARK.seconds - points.length;
  const coords = points.map((count, index) => `${((offset + index) * step).toFixed(1)},${(SPARK.height - 1 - (count / peak) * (SPARK.height - 3)).toFixed(1)}`);
  const line = coords.join(' ');
  if (spark.line.getAttribute('points') !== line) {
    spark.line.setAttribute('points', line);
    spark.area.setAttribute('points', coords.length > 0 ? `${(offset * step).toFixed(1)},${SPARK.height} ${line} ${SPARK.width},${SPARK.height}` : '');
  }
  const busiest = Math.max(0, ...points);
  spark.node.setAttribute('aria-label', `requests per second over the last ${SPARK.seconds / 60} minutes: peak ${busiest}, now ${points.at(-1) ?? 0}`);
}

/** The throughput and latency charts of one app, in `hosts.throughput` and `hosts.latency`. */
export function buildCharts(hosts) {
  if (typeof uPlot !== 'function') return null;
  const width = chartWidth(hosts.throughput);
  const common = { width, height: CHART_HEIGHT, legend: { live: false }, scales: { x: { time: true } } };
  const clock = (_u, splits) => splits.map((ts) => new Date(ts * 1000).toLocaleTimeString([], { hour12: false }));
  const xAxis = { values: clock, space: 70 };
  const throughput = new uPlot({
    ...common, title: 'requests per second',
    series: [{}, { label: 'req/s', stroke: '#2563eb', fill: 'rgba(37,99,235,0.12)', width: 1.5 }],
    axes: [xAxis, { size: 50 }],
  }, [[], []], hosts.throughput);
  const latency = new uPlot({
    ...common, title: 'latency (ms)',
    series: [{},
      { label: 'p50', stroke: '#16a34a', width: 1.5, spanGaps: false },
      { label: 'p95', stroke: '#d97706', width: 1.5, spanGaps: false },
      { label: 'p99', stroke: '#dc2626', width: 1.5, spanGaps: false }],
    axes: [xAxis, { size: 50 }],
  }, [[], [], [], []], hosts.latency);
  return { throughput, latency, hosts };
}

export function updateCharts(charts, history) {
  const xs = history.requests.map((_, index) => history.start + index);
  charts.throughput.setData([xs, history.requests]);
  charts.latency.setData([xs, history.p50, history.p95, history.p99]);
}

export function resizeCharts(charts) {
  const width = chartWidth(charts.hosts.throughput);
  charts.throughput.setSize({ width, height: CHART_HEIGHT });
  charts.latency.setSize({ width, height: CHART_HEIGHT });
}

export function destroyCharts(charts) {
  charts.throughput.destroy();
  charts.latency.destroy();
}

/** The host's width, so that a chart never pushes the page wider than the window. */
function chartWidth(host) {
  return Math.max(240, Math.floor(host.clientWidth || 400));
}
