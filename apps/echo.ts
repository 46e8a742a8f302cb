// Reads the whole request body from wsgi.input and sends it back with its content type.
import type { Environ, StartResponse } from '../runtime/wsgi.ts';

export function application(environ: Environ, startResponse: StartResponse) {
  const body = environ['wsgi.input'].read();
  const type = (environ.CONTENT_TYPE as string) || 'application/octet-stream';
  startResponse('200 OK', [['Content-Type', type], ['Content-Length', String(body.byteLength)]]);
  return [body];
}
