// Real frameworks, unmodified, as a new user would run them: Flask and Bottle from
// Debian's python3-flask and python3-bottle, under Python 3.12 with
// --python-path /usr/lib/python3/dist-packages.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRequest, headerOf, rawRequest, startTestServer, type TestServer } from './support.ts';

const DIST = '/usr/lib/python3/dist-packages';
const missing = [
  ['python3-flask', `${DIST}/flask/__init__.py`],
  ['python3-bottle', `${DIST}/bottle.py`],
].filter(([, path]) => !existsSync(path!)).map(([name]) => name);
if (missing.length > 0) console.warn(`skipping the Flask and Bottle tests: Debian package ${missing.join(' and ')} not installed (apt-get install -y python3-flask python3-bottle)`);

describe.skipIf(missing.length > 0)('Flask and Bottle from Debian, unmodified', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(['--config', 'test/fixtures/python/frameworks.json']);
  }, 120_000);
  afterAll(() => t?.close());

  describe.each(['/flask', '/bottle'])('%s', (app) => {
    it('routes a GET', async () => {
      const response = await fetch(`${t.url}${app}/`);
      expect(response.status).toBe(200);
      expect(await response.text()).toMatch(/^Hello from (Flask|Bottle)!\n$/);
    });

    it('answers JSON from a route with a parameter, reading a cookie', async () => {
      const response = await fetch(`${t.url}${app}/hello/ada`, { headers: { cookie: 'visits=3' } });
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toEqual({ greeting: 'Hello, ada!', visits: 3 });
    });

    it('parses a form POST and sets a cookie', async () => {
      const response = await fetch(`${t.url}${app}/form`, { method: 'POST', body: new URLSearchParams({ name: 'Ada', lang: 'en' }) });
      expect(await response.json()).toEqual({ name: 'Ada', fields: ['lang', 'name'] });
      expect(response.headers.get('set-cookie')).toMatch(/^visits=1/);
    });

    it('redirects within its mount', async () => {
      const response = await rawRequest(t.port, getRequest(`${app}/old`));
      expect(response.status).toBe(app === '/flask' ? 302 : 303);
      expect(new URL(headerOf(response, 'location')!, t.url).pathname).toBe(`${app}/`);
    });

    it('answers 404 from the framework for an unknown path', async () => {
      const response = await fetch(`${t.url}${app}/no/such/page`);
      expect(response.status).toBe(404);
      expect(await response.text()).toMatch(/Not Found/i);
    });
  });
});
