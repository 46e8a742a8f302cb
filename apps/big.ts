// A large response: 1 MiB of 64-byte text lines (?kib=N for another size, at most 64 MiB),
// sent whole with its Content-Length. Built once per interpreter, at import.
import type { Environ, StartResponse } from '../runtime/wsgi.ts';

const LINE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-\n';
const DEFAULT_KIB = 1024;

function makeBody(size: number): Uint8Array {
  return new TextEncoder().encode(LINE.repeat(Math.ceil(size / LINE.length)).slice(0, size));
}

const defaultBody = makeBody(DEFAULT_KIB * 1024);

export function application(environ: Environ, startResponse: StartResponse) {
  const kib = Number(new URLSearchParams(environ.QUERY_STRING as string).get('kib') ?? DEFAULT_KIB);
  if (!Number.isInteger(kib) || kib < 0 || kib > 64 * 1024) {
    startResponse('400 Bad Request', [['Content-Type', 'text/plain']]);
    return ['kib must be an integer from 0 to 65536\n'];
  }
  const body = kib === DEFAULT_KIB ? defaultBody : makeBody(kib * 1024);
  startResponse('200 OK', [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', String(body.byteLength)]]);
  return [body];
}
