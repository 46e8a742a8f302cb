/**
 * The request-head checks Node's parser (llhttp) leaves to us, run on every request
 * before its body is read and before any worker is involved. Pure: the caller hands over
 * what the parser produced (method, target, version, rawHeaders) and gets back the
 * catalog error to answer with, or undefined.
 *
 * llhttp itself refuses duplicate or malformed Content-Length, Content-Length together
 * with Transfer-Encoding, a Transfer-Encoding with a coding after `chunked`, control
 * bytes in header names and values, malformed request lines and versions 1.2 and 3+.
 * It lets through, and this guard refuses: two Host or two Content-Type headers, any
 * Transfer-Encoding but one `chunked` (gzip, identity, `gzip, chunked`), Transfer-Encoding
 * in HTTP/1.0, `*` with a method other than OPTIONS, HTTP/0.9 and HTTP/2.0 request lines,
 * and an absolute-form target with userinfo or without a host.
 * The byte rules llhttp already enforces are checked again here, so that this function
 * states the whole policy and holds even if the parser is ever run leniently.
 */
import { targetAuthority } from './environ.ts';
import { InterpoolError } from './errors.ts';

export interface RequestHead {
  method: string;
  /** The request target exactly as received. */
  target: string;
  /** "1.1", "1.0", ... as Node reports it. */
  httpVersion: string;
  /** Node's rawHeaders: [name, value, name, value, ...], decoded as latin-1. */
  rawHeaders: readonly string[];
}

export interface HeadLimits {
  /** --limit-request-line: longest request line, in bytes, without its CRLF. */
  requestLine: number;
  /** --limit-request-fields: most header fields. */
  fields: number;
  /**
   * --limit-request-field-size: longest header field line, in bytes, counted with its
   * CRLF as gunicorn counts it ("Name: value\r\n"): at 8190, a line of 8188 bytes is the longest.
   */
  fieldSize: number;
}

/** RFC 9110 §5.6.2 token characters: what a header name may hold. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 §5.5: field values are VCHAR, obs-text, SP and HTAB; no other control byte. */
const FORBIDDEN_IN_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/** A request target has no whitespace or control bytes (RFC 9112 §3.2). */
const FORBIDDEN_IN_TARGET = /[\x00-\x20\x7f]/;
/** Headers that must appear at most once: a second one is how requests get smuggled. */
const SINGLETONS = ['host', 'content-length', 'content-type', 'transfer-encoding'];
const SUPPORTED_VERSIONS = new Set(['1.0', '1.1']);

/** The first fault in this request head, as the error to answer with; undefined when it is sound. */
export function findRequestFault(head: RequestHead, limits: HeadLimits): InterpoolError | undefined {
  return checkVersion(head)
    ?? checkRequestLine(head, limits)
    ?? checkFieldLimits(head.rawHeaders, limits)
    ?? checkFieldBytes(head.rawHeaders)
    ?? checkFraming(head)
    ?? checkAsteriskForm(head)
    ?? checkAbsoluteForm(head);
}

/**
 * Fields a chunked body's trailer section may not carry (RFC 9110 §6.5.1): whatever must
 * be known before the body is read, or that a component acting on the header section
 * alone would never see. Framing and connection control, routing (Host and the
 * forwarding headers forwarded.ts reads), authentication and credentials, request
 * modifiers (conditionals, ranges, Expect, caching), and the content's own format.
 * docs/errors.md lists them.
 */
export const FORBIDDEN_TRAILERS: ReadonlySet<string> = new Set([
  'content-length', 'transfer-encoding', 'trailer', 'te', 'connection', 'keep-alive', 'upgrade',
  'host', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-ssl',
  'authorization', 'proxy-authorization', 'cookie',
  'expect', 'range', 'if-range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since',
  'max-forwards', 'cache-control',
  'content-type', 'content-encoding', 'content-range',
]);

/**
 * The first trailer field a request may not carry, as the error to answer with. Node's
 * rawTrailers: [name, value, ...], empty unless a chunked body ended with a trailer section.
 */
export function findTrailerFault(rawTrailers: readonly string[]): InterpoolError | undefined {
  for (let i = 0; i < rawTrailers.length; i += 2) {
    const name = rawTrailers[i]!;
    if (FORBIDDEN_TRAILERS.has(name.toLowerCase())) return new InterpoolError('INTERPOOL_ERR_FORBIDDEN_TRAILER', [printable(name)]);
  }
  return undefined;
}

function badRequest(problem: string): InterpoolError {
  return new InterpoolError('INTERPOOL_ERR_BAD_REQUEST', [problem]);
}

function checkVersion({ httpVersion }: RequestHead): InterpoolError | undefined {
  if (SUPPORTED_VERSIONS.has(httpVersion)) return undefined;
  return new InterpoolError('INTERPOOL_ERR_HTTP_VERSION', [`HTTP/${httpVersion}`]);
}

function checkRequestLine({ method, target, httpVersion }: RequestHead, limits: HeadLimits): InterpoolError | undefined {
  // "GET /path HTTP/1.1": method, space, target, space, "HTTP/" and the version.
  const length = method.length + 1 + target.length + 1 + 5 + httpVersion.length;
  if (length > limits.requestLine) return new InterpoolError('INTERPOOL_ERR_REQUEST_LINE_TOO_LONG', [limits.requestLine]);
  if (target === '' || FORBIDDEN_IN_TARGET.test(target)) return badRequest('the request target holds whitespace or control bytes');
  return undefined;
}

function checkFieldLimits(rawHeaders: readonly string[], limits: HeadLimits): InterpoolError | undefined {
  if (rawHeaders.length / 2 > limits.fields) return new InterpoolError('INTERPOOL_ERR_TOO_MANY_HEADERS', [limits.fields]);
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    // "Name: value" and its CRLF (Node hands the value over without its surrounding whitespace).
    if (name.length + 2 + rawHeaders[i + 1]!.length + 2 > limits.fieldSize) {
      return new InterpoolError('INTERPOOL_ERR_HEADER_TOO_LARGE', [printable(name), limits.fieldSize]);
    }
  }
  return undefined;
}

function checkFieldBytes(rawHeaders: readonly string[]): InterpoolError | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (!TOKEN.test(name)) return badRequest(`header name "${printable(name)}" is not an RFC 9110 token`);
    if (FORBIDDEN_IN_VALUE.test(rawHeaders[i + 1]!)) return badRequest(`header ${name} holds a control byte`);
  }
  return undefined;
}

function checkFraming({ rawHeaders, httpVersion }: RequestHead): InterpoolError | undefined {
  // How often each of SINGLETONS occurs (a fixed array: this runs for every request).
  const counts = SINGLETONS.map(() => 0);
  let transferEncoding: string | undefined;
  let contentLength: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const singleton = SINGLETONS.indexOf(name);
    if (singleton < 0) continue;
    counts[singleton]!++;
    if (name === 'transfer-encoding') transferEncoding = rawHeaders[i + 1]!;
    if (name === 'content-length') contentLength = rawHeaders[i + 1]!;
  }
  if (httpVersion === '1.1' && counts[SINGLETONS.indexOf('host')] === 0) return badRequest('HTTP/1.1 request without a Host header');
  const repeated = counts.findIndex((count) => count > 1);
  if (repeated >= 0) return badRequest(`more than one ${canonical(SINGLETONS[repeated]!)} header`);
  if (contentLength !== undefined && !/^\d+$/.test(contentLength.trim())) return badRequest('Content-Length is not a number');
  if (transferEncoding === undefined) return undefined;
  if (contentLength !== undefined) return badRequest('both Content-Length and Transfer-Encoding');
  if (httpVersion === '1.0') return badRequest('Transfer-Encoding in an HTTP/1.0 request');
  if (transferEncoding.trim().toLowerCase() !== 'chunked') {
    return badRequest(`Transfer-Encoding "${printable(transferEncoding)}" is not supported, only a single chunked`);
  }
  return undefined;
}

function checkAsteriskForm({ method, target }: RequestHead): InterpoolError | undefined {
  if (target === '*' && method !== 'OPTIONS') return badRequest(`the request target * is only for OPTIONS, not ${method}`);
  return undefined;
}

/**
 * An absolute-form target's authority replaces Host (environ.ts), so it must name a host
 * and nothing else: RFC 9110 §4.2.1 rejects an empty host, §4.2.4 treats userinfo as an error.
 */
function checkAbsoluteForm({ target }: RequestHead): InterpoolError | undefined {
  const authority = targetAuthority(target);
  if (authority === undefined) return undefined;
  if (authority.includes('@')) return badRequest('the request target carries userinfo (user@host), which HTTP does not allow');
  if (authority === '' || authority.startsWith(':')) return badRequest('the request target names no host');
  return undefined;
}

function canonical(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase());
}

/** A header name or value as it may appear in a one-line message: short, control bytes escaped. */
function printable(text: string): string {
  const short = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return short.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
