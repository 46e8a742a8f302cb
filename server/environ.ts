/**
 * The CGI part of the WSGI environ, built once on the main thread for every interpreter
 * kind (PEP 3333 and CGI 1.1, RFC 3875). Pure functions: table-driven unit tests cover
 * every rule here.
 */
import type { WireCgi } from '../runtime/protocol.ts';

export interface RequestFacts {
  method: string;
  /** The request target exactly as received (origin-form, or absolute-form). */
  rawUrl: string;
  /** Node's rawHeaders: [name, value, name, value, ...], values decoded as latin-1. */
  rawHeaders: readonly string[];
  httpVersion: string;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  urlScheme: 'http' | 'https';
  bodyLength: number;
  /** The host a trusted proxy says the client asked for (forwarded.ts); replaces HTTP_HOST. */
  forwardedHost?: string | undefined;
}

/** The scheme and authority that begin an absolute-form request target (RFC 9112 §3.2.2); group 1 is the authority. */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i;

/** Split an absolute-form or origin-form request target into raw path and query. */
export function splitRequestTarget(rawUrl: string): { rawPath: string; query: string } {
  let target = rawUrl;
  const absolute = ABSOLUTE_FORM.exec(target);
  if (absolute) target = target.slice(absolute[0].length) || '/';
  // A fragment is the client's own (RFC 9110 §7.1): a request target has none, and one
  // sent anyway is not part of the path or the query (gunicorn drops it too).
  const hash = target.indexOf('#');
  if (hash !== -1) target = target.slice(0, hash);
  const question = target.indexOf('?');
  return question === -1
    ? { rawPath: target, query: '' }
    : { rawPath: target.slice(0, question), query: target.slice(question + 1) };
}

/**
 * The authority of an absolute-form request target ("http://host:81/p" → "host:81"), or
 * undefined for any other form. RFC 9112 §3.2.2: a server that receives the absolute form
 * must take the host from it and ignore the Host header.
 */
export function targetAuthority(rawUrl: string): string | undefined {
  // Origin-form ("/...") is nearly every request: no regular expression for it.
  if (rawUrl.charCodeAt(0) === 0x2f) return undefined;
  return ABSOLUTE_FORM.exec(rawUrl)?.[1];
}

/**
 * Percent-decode a path into a WSGI native string: every decoded byte becomes the
 * latin-1 character of the same value (PEP 3333), so UTF-8 paths arrive as their bytes.
 * Malformed escapes are kept as they are.
 */
export function decodePathLatin1(rawPath: string): string {
  // Node hands the request target over as latin-1 already: without escapes it is final.
  if (!rawPath.includes('%')) return rawPath;
  const bytes: number[] = [];
  const raw = Buffer.from(rawPath, 'latin1');
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i]!;
    if (byte === 0x25 && isHex(raw[i + 1]) && isHex(raw[i + 2])) {
      bytes.push(parseInt(String.fromCharCode(raw[i + 1]!, raw[i + 2]!), 16));
      i += 2;
    } else {
      bytes.push(byte);
    }
  }
  return Buffer.from(bytes).toString('latin1');
}

function isHex(byte: number | undefined): boolean {
  return byte !== undefined && ((byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66));
}

/** A header name may hold only letters, digits and "-": no "_" posing as "-". */
const VALID_HEADER_NAME = /^[A-Za-z0-9-]+$/;

/**
 * Turn request headers into CGI variables. Names with other characters are dropped
 * (so `X_Forwarded_For` can never pose as `X-Forwarded-For`); Content-Type and
 * Content-Length become CONTENT_TYPE/CONTENT_LENGTH, never HTTP_*; `Proxy` is dropped
 * (httpoxy); repeats are joined with ", " (Cookie with "; ").
 */
export function headersToCgi(rawHeaders: readonly string[]): Record<string, string> {
  const cgi: Record<string, string> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const key = cgiKeyOf(rawHeaders[i]!);
    if (key === null) continue;
    const value = rawHeaders[i + 1]!;
    const previous = cgi[key];
    cgi[key] = previous === undefined ? value : `${previous}${key === 'HTTP_COOKIE' ? '; ' : ', '}${value}`;
  }
  return cgi;
}

/**
 * Header name as received → its CGI key (null: dropped), for the names seen first. Every
 * request repeats the same few names (Host, User-Agent, Accept, ...): each is turned into
 * its key once, not upper-cased and rewritten (three new strings) on every request. Bounded
 * in count and name length, so that clients inventing names cannot grow it; other names
 * are converted each time.
 */
const cgiKeys = new Map<string, string | null>();
const CGI_KEYS_KEPT = 512;
/** Longer names are not kept: at most 512 short strings are held, whatever clients send. */
const CGI_KEY_NAME_MAX = 64;

function cgiKeyOf(name: string): string | null {
  const known = cgiKeys.get(name);
  if (known !== undefined) return known;
  const key = convertHeaderName(name);
  if (cgiKeys.size < CGI_KEYS_KEPT && name.length <= CGI_KEY_NAME_MAX) cgiKeys.set(name, key);
  return key;
}

/** One header name's CGI key, or null when the header is dropped (see headersToCgi). */
function convertHeaderName(name: string): string | null {
  if (!VALID_HEADER_NAME.test(name)) return null;
  const upper = name.toUpperCase();
  if (upper === 'PROXY') return null;
  return upper === 'CONTENT-TYPE' || upper === 'CONTENT-LENGTH'
    ? upper.replace('-', '_')
    : `HTTP_${upper.replaceAll('-', '_')}`;
}

/** SERVER_NAME/SERVER_PORT from the Host header when there is one, else the local socket. */
export function serverNameAndPort(host: string | undefined, facts: RequestFacts): [string, string] {
  if (host) {
    const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host.trim());
    if (match) return [match[1]!, match[2] ?? (facts.urlScheme === 'https' ? '443' : '80')];
  }
  return [facts.localAddress, String(facts.localPort)];
}

/** The full set of CGI variables for one request, for an app mounted at scriptName. */
export function buildCgi(facts: RequestFacts, scriptName: string, pathInfo: string, query: string): Record<string, string> {
  const headers = headersToCgi(facts.rawHeaders);
  // The host the client asked for: a trusted proxy's word, else an absolute-form target's
  // authority (which replaces Host, RFC 9112 §3.2.2), else the Host header.
  const authority = targetAuthority(facts.rawUrl);
  if (authority !== undefined) headers.HTTP_HOST = authority;
  if (facts.forwardedHost !== undefined) headers.HTTP_HOST = facts.forwardedHost;
  const [serverName, serverPort] = serverNameAndPort(headers.HTTP_HOST, facts);
  // The CGI variables go into the same object as the headers (one allocation per request);
  // header names can never collide with them (every header becomes HTTP_* or CONTENT_*).
  const cgi = headers;
  // Without the headers, CONTENT_LENGTH and CONTENT_TYPE are absent, as under gunicorn,
  // mod_wsgi and wsgiref (PEP 3333 allows empty or absent): an app's
  // int(environ.get("CONTENT_LENGTH", 0)) fails on an empty one, on every GET. A body
  // that came chunked, without Content-Length, gets its length: it is read whole first.
  if (cgi.CONTENT_LENGTH === undefined && facts.bodyLength > 0) cgi.CONTENT_LENGTH = String(facts.bodyLength);
  cgi.REQUEST_METHOD = facts.method;
  cgi.SCRIPT_NAME = scriptName;
  cgi.PATH_INFO = pathInfo;
  cgi.QUERY_STRING = query;
  cgi.SERVER_NAME = serverName;
  cgi.SERVER_PORT = serverPort;
  cgi.SERVER_PROTOCOL = `HTTP/${facts.httpVersion}`;
  // The request target as sent, still percent-encoded: how an app tells an encoded slash
  // from a real one. Apache (mod_wsgi) and uWSGI call it REQUEST_URI, gunicorn RAW_URI.
  cgi.REQUEST_URI = facts.rawUrl;
  cgi.RAW_URI = facts.rawUrl;
  cgi.REMOTE_ADDR = facts.remoteAddress;
  cgi.REMOTE_PORT = String(facts.remotePort);
  return cgi;
}

/**
 * The CGI variables as they cross to the worker (runtime/protocol.ts WireCgi): packed in
 * one string, unless a value holds a NUL (PATH_INFO decoded from %00), which the packing
 * uses as its separator: then the object itself.
 */
export function toWireCgi(cgi: Record<string, string>): WireCgi {
  let packed = '';
  for (const key in cgi) {
    const value = cgi[key]!;
    if (value.indexOf('\0') !== -1) return cgi;
    packed += `${key}\0${value}\0`;
  }
  return packed;
}
