// A hit counter in the app's shared store (docs/shared-store.md): every interpreter of
// the app counts into the same key, kept by the server, so the count is exact.
//   npx interpool serve apps/shared_counter.ts --workers 4
// DELETE / sets it back to 0.
import type { Environ, StartResponse } from '../runtime/wsgi.ts';

export async function application(environ: Environ, startResponse: StartResponse) {
  const shared = environ['interpool.shared'];
  let hits = 0;
  if (environ.REQUEST_METHOD === 'DELETE') await shared.delete('hits');
  else hits = await shared.incr('hits');
  startResponse('200 OK', [['Content-Type', 'application/json']]);
  return [`${JSON.stringify({ hits })}\n`];
}
