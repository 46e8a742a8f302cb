// A hit counter in the app's shared store (docs/shared-store.md): every interpreter of
// the app counts into the same key, kept by the server, so the count is exact.
//   npx interpool serve apps/shared_counter.ts --workers 4
interface Shared {
  incr(key: string): Promise<number>;
  delete(key: string): Promise<boolean>;
}

export async function application(environ: Record<string, unknown>, startResponse: (status: string, headers: [string, string][]) => unknown) {
  const shared = environ['interpool.shared'] as Shared;
  let hits = 0;
  if (environ.REQUEST_METHOD === 'DELETE') await shared.delete('hits');
  else hits = await shared.incr('hits');
  startResponse('200 OK', [['Content-Type', 'application/json']]);
  return [`${JSON.stringify({ hits })}\n`];
}
