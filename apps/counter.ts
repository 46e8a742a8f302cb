// Module-level state: each interpreter (worker thread) has its own copy of this counter,
// so the answer shows which interpreter served the request and how many it has served.
// With --processes, `process` tells the server processes apart too.
import { threadId } from 'node:worker_threads';
import type { StartResponse } from '../runtime/wsgi.ts';

let served = 0;

export function application(_environ: Record<string, unknown>, startResponse: StartResponse) {
  served += 1;
  const body = JSON.stringify({ process: process.pid, interpreter: threadId, served }) + '\n';
  startResponse('200 OK', [['Content-Type', 'application/json'], ['Content-Length', String(body.length)]]);
  return [body];
}
