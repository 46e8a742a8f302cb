// Debian's nginx in front of interpool on loopback, configured as in
// docs/deployment-nginx.md (without TLS): the client's address, host and scheme reach
// the app through the trusted proxy, and a client's own forwarding headers do not.
// The client connects from 127.0.0.2 so that its address differs from nginx's.
//
// And the admin behind nginx, as docs/admin.md tells it: the documented config's
// forwarding headers keep it closed; a plain `proxy_pass` (no forwarding header) makes
// every client local, which interpool cannot tell; a token, or --admin-bind, is what
// keeps it closed then.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange } from './hardening-support.ts';
import { freePort, headerOf, startTestServer, waitFor, type TestServer } from './support.ts';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((path) => existsSync(path));
if (!NGINX) console.warn('nginx-proxy.test.ts skipped: nginx is not installed (Debian package "nginx": apt-get install -y nginx)');

const TOKEN = 'nginx-test-admin-token-0123456789';

describe.skipIf(!NGINX)('behind nginx (Debian package "nginx")', () => {
  let interpool: TestServer;
  /** The same app with --admin-token, and with --admin-bind. */
  let tokened: TestServer;
  let separate: TestServer;
  let nginx: ChildProcess;
  let prefix: string;
  /** nginx ports: the documented config, and a plain proxy_pass, in front of each interpool. */
  let port: number;
  let plainPort: number;
  let tokenedPort: number;
  let tokenedPlainPort: number;
  let separatePort: number;

  beforeAll(async () => {
    interpool = await startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1']);
    tokened = await startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1', '--admin-token', TOKEN]);
    separate = await startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1', '--admin-bind', '127.0.0.1:0']);
    [port, plainPort, tokenedPort, tokenedPlainPort, separatePort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    prefix = mkdtempSync(join(tmpdir(), 'interpool-nginx-'));
    for (const dir of ['logs', 'tmp']) mkdirSync(join(prefix, dir));
    writeFileSync(join(prefix, 'nginx.conf'), nginxConfig(prefix, [
      { listen: port, upstream: interpool.port, plain: false },
      { listen: plainPort, upstream: interpool.port, plain: true },
      { listen: tokenedPort, upstream: tokened.port, plain: false },
      { listen: tokenedPlainPort, upstream: tokened.port, plain: true },
      { listen: separatePort, upstream: separate.port, plain: false },
    ]));
    nginx = spawn(NGINX!, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'logs', 'error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    nginx.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    await waitFor(async () => {
      if (nginx.exitCode !== null) throw new Error(`nginx exited ${nginx.exitCode}: ${stderr}${readLog(prefix)}`);
      return (await exchange(port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { waitMs: 1000 }).catch(() => undefined))?.response.status === 200;
    }, 10_000, 'nginx to answer');
  });

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx.once('exit', resolve));
      nginx.kill('SIGTERM');
      await exited;
    }
    await Promise.all([interpool?.close(), tokened?.close(), separate?.close()]);
    if (prefix) rmSync(prefix, { recursive: true, force: true });
  });

  const through = async (request: string, nginxPort = port, localAddress = '127.0.0.2') => {
    const { response } = await exchange(nginxPort, request, { localAddress });
    return response;
  };
  const environOf = async (headers: string[]) => {
    const response = await through(`GET /who?x=1 HTTP/1.1\r\nHost: app.example:8080\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`);
    expect(response.status).toBe(200);
    return JSON.parse(response.body.toString('utf8')) as Record<string, string>;
  };

  it('the app sees the client, not nginx: REMOTE_ADDR, HTTP_HOST, scheme', async () => {
    const environ = await environOf([]);
    expect(environ.REMOTE_ADDR).toBe('127.0.0.2');
    expect(environ.HTTP_HOST).toBe('app.example:8080');
    expect(environ.SERVER_NAME).toBe('app.example');
    expect(environ.SERVER_PORT).toBe('8080');
    expect(environ['wsgi.url_scheme']).toBe('http');
    expect(environ.PATH_INFO).toBe('/who');
    expect(environ.QUERY_STRING).toBe('x=1');
  });

  it.each([
    ['X-Forwarded-For naming another client', ['X-Forwarded-For: 6.6.6.6']],
    ['X-Forwarded-Proto claiming https', ['X-Forwarded-Proto: https']],
    ['X-Forwarded-Host claiming another host', ['X-Forwarded-Host: bank.example']],
  ])('a client spoofing %s gets nowhere', async (_attack, headers) => {
    const environ = await environOf(headers);
    expect(environ.REMOTE_ADDR).toBe('127.0.0.2');
    expect(environ['wsgi.url_scheme']).toBe('http');
    expect(environ.HTTP_HOST).toBe('app.example:8080');
  });

  it('bodies pass through, chunked ones too', async () => {
    const response = await through('POST /who HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    expect(response.status).toBe(200);
    const environ = JSON.parse(response.body.toString('utf8')) as Record<string, string>;
    expect(environ.CONTENT_LENGTH).toBe('5');
    expect(environ.REQUEST_METHOD).toBe('POST');
  });

  it('interpool\'s refusals reach the client through nginx', async () => {
    const response = await through(`GET /${'a'.repeat(5000)} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    expect(response.status).toBe(414);
    expect(response.body.toString('utf8')).toMatch(/INTERPOOL_ERR_REQUEST_LINE_TOO_LONG/);
  });

  describe('the admin behind nginx (docs/admin.md, "Behind a reverse proxy")', () => {
    const get = (path: string, headers: string[] = []) => `GET ${path} HTTP/1.1\r\nHost: app.example\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;
    const pathInfoOf = (response: { body: Buffer }) => (JSON.parse(response.body.toString('utf8')) as Record<string, string>).PATH_INFO;
    const signIn = (token: string) => `POST /_interpool/login HTTP/1.1\r\nHost: app.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${`token=${token}`.length}\r\nConnection: close\r\n\r\ntoken=${token}`;

    it('the documented config: its forwarding headers keep the admin closed to every client, without a token; they reach the app at / instead', async () => {
      for (const path of ['/_interpool/api/stats', '/_interpool/metrics', '/metrics', '/_interpool']) {
        const response = await through(get(path));
        expect(response.status, path).toBe(200);
        expect(pathInfoOf(response), path).toBe(path);
      }
    });

    it('a plain proxy_pass sends no forwarding header: interpool cannot tell, every client gets the admin (hence the warning, and --admin-bind or a token)', async () => {
      const stats = await through(get('/_interpool/api/stats'), plainPort);
      expect(stats.status).toBe(200);
      expect(JSON.parse(stats.body.toString('utf8')).apps).toHaveLength(1);
      expect(headerOf(await through(get('/_interpool/metrics'), plainPort), 'content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      // /metrics is the app's: it is mounted at /.
      expect(pathInfoOf(await through(get('/metrics'), plainPort))).toBe('/metrics');
    });

    it('with a token, only the token opens the admin through a plain proxy_pass; the sign-in works through it', async () => {
      // Without it, the app at / answers.
      expect(pathInfoOf(await through(get('/_interpool/api/stats'), tokenedPlainPort))).toBe('/_interpool/api/stats');
      expect(pathInfoOf(await through(get('/_interpool/metrics'), tokenedPlainPort))).toBe('/_interpool/metrics');
      const page = await through(get('/_interpool'), tokenedPlainPort);
      expect(page.status).toBe(303);
      expect(headerOf(page, 'location')).toMatch(/\/_interpool\/login$/);
      expect((await through(get('/_interpool/metrics', [`Authorization: Bearer ${TOKEN}`]), tokenedPlainPort)).status).toBe(200);
      const signedIn = await through(signIn(TOKEN), tokenedPlainPort);
      expect(signedIn.status).toBe(303);
      const cookie = headerOf(signedIn, 'set-cookie')!.split(';')[0]!;
      expect((await through(get('/_interpool/api/stats', [`Cookie: ${cookie}`]), tokenedPlainPort)).status).toBe(200);
    });

    it('the sign-in throttle counts each client nginx names (documented config); behind a plain proxy_pass all clients are one', async () => {
      for (let attempt = 1; attempt <= 5; attempt++) {
        expect((await through(signIn(`wrong-token-number-${attempt}`), tokenedPort, '127.0.0.3')).status, `attempt ${attempt}`).toBe(303);
      }
      const throttled = await through(signIn(TOKEN), tokenedPort, '127.0.0.3');
      expect(throttled.status).toBe(429);
      expect(Number(headerOf(throttled, 'retry-after'))).toBeGreaterThan(0);
      expect(throttled.body.toString('utf8')).toMatch(/INTERPOOL_ERR_ADMIN_THROTTLED/);
      // Another client, named by nginx's X-Forwarded-For, is not held back.
      expect((await through(get('/_interpool/api/stats', [`Authorization: Bearer ${TOKEN}`]), tokenedPort, '127.0.0.4')).status).toBe(200);
      expect(tokened.logs.filter((entry) => entry.msg === 'admin sign-in refused: wrong token' && entry.client === '127.0.0.3')).toHaveLength(5);

      // A plain proxy_pass names nobody: every client is nginx, and one client's guesses hold back the others.
      for (let attempt = 1; attempt <= 5; attempt++) await through(signIn(`wrong-token-again-${attempt}`), tokenedPlainPort, '127.0.0.5');
      expect((await through(signIn(TOKEN), tokenedPlainPort, '127.0.0.6')).status).toBe(429);
    });

    it('--admin-bind: through nginx /_interpool and /metrics reach the app; the admin answers on its own loopback port only', async () => {
      for (const path of ['/_interpool/api/stats', '/metrics']) {
        const response = await through(get(path), separatePort);
        expect(response.status, path).toBe(200);
        expect((JSON.parse(response.body.toString('utf8')) as Record<string, string>).PATH_INFO).toBe(path);
      }
      const admin = await fetch(`${separate.server.adminUrl!}/_interpool/api/stats`);
      expect(admin.status).toBe(200);
    });
  });
});

interface ProxyServer {
  listen: number;
  upstream: number;
  /** A bare `proxy_pass`, nginx's defaults: no forwarding header at all, HTTP/1.0, Host: 127.0.0.1:PORT. */
  plain: boolean;
}

/** docs/deployment-nginx.md's configuration (or a plain proxy_pass), on loopback, without TLS, in its own prefix. */
function nginxConfig(prefix: string, servers: readonly ProxyServer[]): string {
  const tmp = join(prefix, 'tmp');
  const blocks = servers.map(({ listen, upstream, plain }) => plain
    ? `
    server {
        listen 127.0.0.1:${listen};
        location / {
            proxy_pass http://127.0.0.1:${upstream};
        }
    }`
    : `
    upstream interpool_${listen} {
        server 127.0.0.1:${upstream};
        keepalive 16;
    }

    server {
        listen 127.0.0.1:${listen};
        server_name app.example;
        client_max_body_size 10m;

        location / {
            proxy_pass http://interpool_${listen};
            proxy_http_version 1.1;
            proxy_set_header Connection "";

            proxy_set_header Host              $http_host;
            proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host  $http_host;

            proxy_buffering off;
            proxy_read_timeout 60s;
        }
    }`).join('\n');
  return `
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'logs', 'error.log')} warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${tmp}/body;
    proxy_temp_path ${tmp}/proxy;
    fastcgi_temp_path ${tmp}/fastcgi;
    uwsgi_temp_path ${tmp}/uwsgi;
    scgi_temp_path ${tmp}/scgi;
${blocks}
}
`;
}

function readLog(prefix: string): string {
  try {
    return readFileSync(join(prefix, 'logs', 'error.log'), 'utf8');
  } catch {
    return '';
  }
}
