// Large bodies cross from the interpreter's thread to the main thread. The engines' own
// copies of an app's bytes (native, Pyodide) are moved rather than copied; a JS app's
// buffers are its own and are copied. Either way every client gets the app's bytes
// intact, again and again: an app that sends the same objects on every request (made
// once at import, as most do) must not find them emptied by the request before.
import { afterEach, describe, expect, it } from 'vitest';
import { appKinds, engineTitle } from './python-engines.ts';
import { startTestServer, type TestServer } from './support.ts';

let t: TestServer | undefined;
afterEach(async () => { await t?.close(); t = undefined; });

const BLOCK = Buffer.from(new Uint8Array(256 * 1024).map((_, index) => index % 256));
const REVERSED = Buffer.from(BLOCK).reverse();
const WHOLE = Buffer.concat([BLOCK, BLOCK, BLOCK, BLOCK]);

const EXPECTED: Record<string, Buffer> = {
  '/whole': WHOLE,
  '/chunks': Buffer.concat([BLOCK, REVERSED, BLOCK]),
  '/write': Buffer.concat([WHOLE, BLOCK]),
  '/views': Buffer.concat([BLOCK, BLOCK]),
};

describe('large bodies reach the client intact, every time', () => {
  for (const kind of appKinds()) {
    it.skipIf(kind.skip !== undefined)(engineTitle(kind), async () => {
      t = await startTestServer([kind.fixture('same-large-bodies'), '--workers', '1', ...kind.args]);
      for (let round = 0; round < 3; round++) {
        for (const [path, expected] of Object.entries(EXPECTED)) {
          const response = await fetch(`${t.url}${path}`);
          expect(response.status, path).toBe(200);
          const body = Buffer.from(await response.arrayBuffer());
          expect(body.length, `${path}, round ${round + 1}`).toBe(expected.length);
          expect(body.equals(expected), `${path}, round ${round + 1}: the bytes differ`).toBe(true);
        }
      }
      // Several at once, on one interpreter: each body its own.
      const paths = Object.keys(EXPECTED);
      const bodies = await Promise.all([...paths, ...paths].map(async (path) => [path, Buffer.from(await (await fetch(`${t!.url}${path}`)).arrayBuffer())] as const));
      for (const [path, body] of bodies) expect(body.equals(EXPECTED[path]!), `${path}, concurrent`).toBe(true);
    }, 120_000);
  }
});
