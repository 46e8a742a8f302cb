// The smallest WSGI app: a fixed plain-text greeting.
import type { StartResponse } from '../runtime/wsgi.ts';

const body = new TextEncoder().encode('Hello, World!\n');

export function application(_environ: Record<string, unknown>, startResponse: StartResponse) {
  startResponse('200 OK', [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', String(body.byteLength)]]);
  return [body];
}
