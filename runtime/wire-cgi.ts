/**
 * The CGI variables of a request as the main thread sends them (runtime/protocol.ts
 * WireCgi): packed in one string, or an object when a value holds a NUL.
 */
import type { WireCgi } from './protocol.ts';

/** The variables as an object, for the interpreters that take them so. */
export function unpackCgi(cgi: WireCgi): Record<string, string> {
  if (typeof cgi !== 'string') return cgi;
  const record: Record<string, string> = {};
  let at = 0;
  while (at < cgi.length) {
    const keyEnd = cgi.indexOf('\0', at);
    const valueEnd = keyEnd < 0 ? -1 : cgi.indexOf('\0', keyEnd + 1);
    if (valueEnd < 0) break;
    record[cgi.slice(at, keyEnd)] = cgi.slice(keyEnd + 1, valueEnd);
    at = valueEnd + 1;
  }
  return record;
}
