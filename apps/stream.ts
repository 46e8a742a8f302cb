// Streams a few lines, pausing between them: each line reaches the client as it is made.
// ?chunks=N (default 5) and ?delay=MS (default 200).
import type { Environ, StartResponse } from '../runtime/wsgi.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function application(environ: Environ, startResponse: StartResponse) {
  const query = new URLSearchParams(environ.QUERY_STRING as string);
  const chunks = Math.min(Number(query.get('chunks') ?? 5) || 5, 1000);
  const delay = Math.min(Number(query.get('delay') ?? 200) || 0, 10_000);
  startResponse('200 OK', [['Content-Type', 'text/plain; charset=utf-8']]);
  return (async function* () {
    for (let i = 1; i <= chunks; i++) {
      yield `chunk ${i} of ${chunks} at ${new Date().toISOString()}\n`;
      if (i < chunks && delay > 0) await sleep(delay);
    }
  })();
}
