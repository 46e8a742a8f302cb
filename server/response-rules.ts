/**
 * What a WSGI app may put in its status line and headers (PEP 3333, RFC 9110). Checked
 * on the main thread for every interpreter kind, before anything reaches the socket: a
 * violation is a 500 with a log line naming the fault, never a malformed response.
 *
 * The interpreters check the same rules earlier, when the app calls start_response, and
 * raise inside the app (runtime/wsgi.py, runtime/start-response-checks.ts), so a fault
 * normally never gets here: this is the last line of defence, for an adapter that let
 * one through. test/server/start-response-checks.test.ts holds the three to one table.
 */
import type { FlatHeaders } from '../runtime/protocol.ts';

/** "200 OK": three digits (200-599), one space, a reason phrase without control bytes. */
const STATUS_LINE = /^([2-5]\d\d) ([\t\x20-\x7e\x80-\xff]*)$/;
/** RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Visible latin-1 characters, space and tab: no CR, LF, NUL or other controls. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Digits, with optional spaces or tabs around them (RFC 9110 field-value whitespace). */
const CONTENT_LENGTH = /^[ \t]*\d+[ \t]*$/;

/** PEP 3333 forbids an app from setting these; the server owns the connection. */
export const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers',
  'transfer-encoding', 'upgrade',
]);

export interface ParsedStatus {
  code: number;
  reason: string;
}

/** Parse a WSGI status string, or say what is wrong with it. */
export function parseStatusLine(status: string): ParsedStatus | { fault: string } {
  const match = STATUS_LINE.exec(status);
  if (!match) {
    const shown = JSON.stringify(status.length > 60 ? `${status.slice(0, 60)}...` : status);
    const why = /[\r\n]/.test(status) ? 'contains CR or LF' : 'is not a 3-digit code (200-599), a space and a reason';
    return { fault: `status ${shown} ${why}` };
  }
  return { code: Number(match[1]), reason: match[2]! };
}

/** HOP_BY_HOP as one case-insensitive test: no lower-cased copy of every header name of every response. */
const HOP_BY_HOP_NAME = new RegExp(`^(?:${[...HOP_BY_HOP].join('|')})$`, 'i');

/** The first rule a header list (name, value, ...) breaks, or undefined when all are fine. */
export function findHeaderFault(headers: Readonly<FlatHeaders>): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (!HEADER_NAME.test(name)) return `header name ${JSON.stringify(name)} is not a valid token`;
    if (HOP_BY_HOP_NAME.test(name)) return `hop-by-hop header "${name}" may not be set by an app`;
    if (!HEADER_VALUE.test(value)) {
      const why = /[\r\n]/.test(value) ? 'contains CR or LF' : 'contains a control or non-latin-1 character';
      return `value of header "${name}" ${why}`;
    }
    if (name.length === 14 && name.toLowerCase() === 'content-length' && !CONTENT_LENGTH.test(value)) {
      return `Content-Length ${JSON.stringify(value)} is not a non-negative integer`;
    }
  }
  return undefined;
}
