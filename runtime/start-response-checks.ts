/**
 * What `startResponse` checks for a JS app, when it is called, so that the error is
 * thrown inside the app at the line at fault (PEP 3333 lets a server check there, and
 * mod_wsgi does). The rules are runtime/wsgi.py's for Python apps and
 * server/response-rules.ts's on the main thread (the last line of defence); a table of
 * cases in test/server/start-response-checks.test.ts shows the three agree.
 *
 * In JS terms: a value of the wrong type is a TypeError, a string that breaks a rule is
 * a RangeError; the message says what is wrong and shows the value.
 */
import type { HeaderPair } from './protocol.ts';

/** Three digits, then a space (the code's range is checked apart, for its own message). */
const STATUS_START = /^\d{3} /;
/** RFC 9110 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Control characters except horizontal tab (CR and LF have their own message). */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const CR_OR_LF = /[\r\n]/;
/** PEP 3333: status and headers are ISO-8859-1. */
const NOT_LATIN1 = /[^\x00-\xff]/;

/** PEP 3333 forbids an app from setting these; the server runs the connection. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers',
  'transfer-encoding', 'upgrade',
]);

export function checkStatus(status: unknown): string {
  if (typeof status !== 'string') throw new TypeError(`status must be a string like "200 OK", got ${show(status)}`);
  if (CR_OR_LF.test(status)) throw new RangeError(`status ${clip(status)} contains CR or LF (header injection)`);
  if (CONTROL.test(status)) throw new RangeError(`status ${clip(status)} contains a control character`);
  if (NOT_LATIN1.test(status)) throw new RangeError(`status ${clip(status)} is not latin-1 (${firstNonLatin1(status)})`);
  if (!STATUS_START.test(status)) throw new RangeError(`status ${clip(status)} must be a three-digit code, a space and a reason phrase, e.g. "200 OK"`);
  const code = Number(status.slice(0, 3));
  if (code < 200 || code > 599) throw new RangeError(`status ${clip(status)}: an app's status code must be 200-599 (1xx are the server's to send)`);
  return status;
}

/** Check every header and return a copy (the app may change its array afterwards). */
export function checkHeaders(headers: unknown): HeaderPair[] {
  if (!Array.isArray(headers)) throw new TypeError(`headers must be an array of [name, value] pairs, got ${show(headers)}`);
  return headers.map((pair: unknown, index) => {
    if (!Array.isArray(pair)) throw new TypeError(`headers[${index}] must be a [name, value] pair, got ${show(pair)}`);
    if (pair.length !== 2) throw new RangeError(`headers[${index}] must be a [name, value] pair of 2 items, got ${pair.length}: ${clip(pair)}`);
    const [name, value] = pair as [unknown, unknown];
    if (typeof name !== 'string') throw new TypeError(`header name must be a string, got ${show(name)}`);
    if (typeof value !== 'string') throw new TypeError(`value of header ${clip(name)} must be a string, got ${show(value)}`);
    checkHeader(name, value);
    return [name, value];
  });
}

function checkHeader(name: string, value: string): void {
  if (NOT_LATIN1.test(name)) throw new RangeError(`header name ${clip(name)} is not latin-1 (${firstNonLatin1(name)})`);
  if (!TOKEN.test(name)) {
    throw new RangeError(`header name ${clip(name)} is not a valid token (letters, digits and !#$%&'*+-.^_\`|~; no spaces, colons or control characters)`);
  }
  const lower = name.toLowerCase();
  if (HOP_BY_HOP.has(lower)) throw new RangeError(`hop-by-hop header ${clip(name)} may not be set by an app (PEP 3333): the server runs the connection`);
  if (CR_OR_LF.test(value)) throw new RangeError(`value of header ${clip(name)} contains CR or LF (header injection): ${clip(value)}`);
  if (CONTROL.test(value)) throw new RangeError(`value of header ${clip(name)} contains a control character: ${clip(value)}`);
  if (NOT_LATIN1.test(value)) throw new RangeError(`value of header ${clip(name)} is not latin-1 (${firstNonLatin1(value)}): ${clip(value)}`);
  if (lower === 'content-length' && !/^\d+$/.test(value.replace(/^[ \t]+|[ \t]+$/g, ''))) {
    throw new RangeError(`Content-Length must be a non-negative integer, got ${clip(value)}`);
  }
}

/**
 * excInfo, in JS terms: what the app caught (an Error, as a rule; JS can throw any
 * value), or nothing. `true` or a number is a sign of a mix-up, not of an error.
 */
export function checkExcInfo(excInfo: unknown): void {
  if (excInfo == null || typeof excInfo === 'object' || typeof excInfo === 'string') return;
  throw new TypeError(`excInfo must be the error the app caught (or undefined), got ${show(excInfo)}`);
}

function firstNonLatin1(text: string): string {
  const index = text.search(NOT_LATIN1);
  const code = text.codePointAt(index)!;
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')} at position ${index}`;
}

function clip(value: unknown): string {
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value); // a BigInt, or an object that refuses to be serialised
  }
  return shown.length <= 80 ? shown : `${shown.slice(0, 77)}...`;
}

/** A wrong value as an error message shows it: its type, then the value itself. */
function show(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `an array ${clip(value)}`;
  if (value instanceof Uint8Array) return `a ${value.constructor.name} of ${value.byteLength} bytes`;
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'Object'}) ${clip(value)}`;
  return `${typeof value} ${clip(value)}`;
}
