// CPU-bound work: naive recursive Fibonacci of ?n= (default 25, at most 35).
import type { Environ, StartResponse } from '../runtime/wsgi.ts';

function fibonacci(n: number): number {
  return n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2);
}

export function application(environ: Environ, startResponse: StartResponse) {
  const query = new URLSearchParams(environ.QUERY_STRING as string);
  const raw = query.get('n') ?? (/^\d+$/.test(environ.QUERY_STRING as string) ? (environ.QUERY_STRING as string) : '25');
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 35) {
    startResponse('400 Bad Request', [['Content-Type', 'text/plain']]);
    return ['n must be an integer from 0 to 35\n'];
  }
  const body = `fib(${n}) = ${fibonacci(n)}\n`;
  startResponse('200 OK', [['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]]);
  return [body];
}
