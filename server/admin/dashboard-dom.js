// Small DOM and formatting helpers shared by the dashboard's modules. Everything shown
// is set as text (textContent), never parsed as HTML: paths and messages come from
// clients and from apps.

const SVG = 'http://www.w3.org/2000/svg';

/** An element with attributes (class, data-*, aria-*, or properties) and children. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attributes);
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** An SVG element (attributes only). */
export function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function setAttributes(node, attributes) {
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('data-') || key.startsWith('aria-') || key === 'role' || key === 'scope' || key === 'colspan') node.setAttribute(key, value);
    else node[key] = value;
  }
}

/** Write text only when it changed, so that selections and focus inside are kept. */
export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

export function formatBytes(bytes) {
  if (!bytes) return '–';
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  return `${(bytes / 1024 ** 2).toFixed(bytes >= 100 * 1024 ** 2 ? 0 : 1)} MiB`;
}

export function formatDuration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

/** "3.1 / 18 / 42 ms"; "–" where there is no request to measure. */
export function formatLatencies({ p50, p95, p99 }) {
  if (p50 === null && p95 === null && p99 === null) return '–';
  const one = (ms) => (ms === null ? '–' : ms < 10 ? ms.toFixed(1) : String(Math.round(ms)));
  return `${one(p50)} / ${one(p95)} / ${one(p99)} ms`;
}

/** A share (0..1) as a percentage; "–" without any response to count. */
export function formatRate(rate) {
  if (rate === null || rate === undefined) return '–';
  if (rate === 0) return '0 %';
  return `${(rate * 100).toFixed(rate < 0.1 ? 1 : 0)} %`;
}

export function formatClock(epochMs) {
  return new Date(epochMs).toLocaleTimeString([], { hour12: false });
}
