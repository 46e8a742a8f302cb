// Debian's nginx in front of interpool on loopback, configured as in
// docs/deployment-nginx.md (without TLS): the client's address, host and scheme reach
// the app through the trusted proxy, and a client's own forwarding headers do not.
// The client connects from 127.0.0.2 so that its address differs from nginx's.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange } from './hardening-support.ts';
import { freePort, startTestServer, waitFor, type TestServer } from './support.ts';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((path) => existsSync(path));
if (!NGINX) console.warn('nginx-proxy.test.ts skipped: nginx is not installed (Debian package "nginx": apt-get install -y nginx)');

describe.skipIf(!NGINX)('behind nginx (Debian package "nginx")', () => {
  let interpool: TestServer;
  let nginx: ChildProcess;
  let prefix: string;
  let port: number;

  beforeAll(async () => {
    interpool = await startTestServer(['/=test/fixtures/apps/environ-echo.ts', '--workers', '1']);
    port = await freePort();
    prefix = mkdtempSync(join(tmpdir(), 'interpool-nginx-'));
    for (const dir of ['logs', 'tmp']) mkdirSync(join(prefix, dir));
    writeFileSync(join(prefix, 'nginx.conf'), nginxConfig(prefix, port, interpool.port));
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
    await interpool?.close();
    if (prefix) rmSync(prefix, { recursive: true, force: true });
  });

  const through = async (request: string) => {
    const { response } = await exchange(port, request, { localAddress: '127.0.0.2' });
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
});

/** docs/deployment-nginx.md's configuration, on loopback, without TLS, in its own prefix. */
function nginxConfig(prefix: string, listenPort: number, interpoolPort: number): string {
  const tmp = join(prefix, 'tmp');
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

    upstream interpool {
        server 127.0.0.1:${interpoolPort};
        keepalive 16;
    }

    server {
        listen 127.0.0.1:${listenPort};
        server_name app.example;
        client_max_body_size 10m;

        location / {
            proxy_pass http://interpool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";

            proxy_set_header Host              $http_host;
            proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host  $http_host;

            proxy_buffering off;
            proxy_read_timeout 60s;
        }
    }
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
