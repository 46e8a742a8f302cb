// HTTPS from Python apps under Pyodide (--python 3.14): ssl.SSLContext on Node's TLS.
// A real interpool server runs test/fixtures/apps/https-client.py, which calls real
// node:https / node:net servers this test starts on loopback, with certificates from a
// private CA the test makes with the openssl command. Each case asserts what the app
// reports: the answer, or the exception it caught. Under --python 3.12 (no socket layer)
// HTTPS fails at once, naming the setting to change.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { resolve } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST_PACKAGES, missingPackages, scratchDir, startSilentService, type Service } from './python-network-services.ts';
import { startTestServer, waitFor, type TestServer } from './support.ts';

const missing = missingPackages([['python3-requests', `${DIST_PACKAGES}/requests/__init__.py`]]);
if (missing.length > 0) console.warn(`python-https.test.ts: the requests cases are skipped: Debian package ${missing.join(' and ')} not installed (apt-get install -y ${missing.join(' ')})`);

const APP = resolve('test/fixtures/apps/https-client.py');
/** A body of many TLS records (2 MiB, not repetitive). */
const BIG = Array.from({ length: 2 ** 15 }, (_, i) => createHash('sha256').update(String(i)).digest('hex')).join('');
/** The variables this test sets for the apps (restored afterwards). */
const ENV = ['TLS_DIR', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'] as const;

interface Cause { type: string; message: string; is_ssl_error: boolean; is_os_error: boolean; verify_code: number | null; verify_message: string | null }
interface Peer { cert: Record<string, unknown>; der_sha256: string; version: string; cipher: [string, string, number] }
interface Outcome {
  ok: boolean; status?: number; body?: string; peer?: Peer; error?: string; message?: string; cause?: Cause;
  /** The interpreter that answered. */
  interpreter: string;
}

/** A private CA, a server certificate for `localhost` only, a client certificate, and an unrelated CA. */
function makeCertificates(dir: string): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    openssl('req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=interpool test ${ca}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  }
  const issue = (name: string, subject: string, extensions: string) => {
    writeFileSync(`${dir}/${name}.ext`, extensions);
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  };
  issue('server', '/O=interpool tests/CN=localhost', 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  issue('client', '/CN=interpool test client', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  openssl('pkey', '-in', 'client.key', '-aes256', '-passout', 'pass:secret', '-out', 'client-encrypted.key');
  // A directory as OpenSSL's capath wants it: the CA under its subject hash.
  mkdirSync(`${dir}/capath`);
  const hash = openssl('x509', '-hash', '-noout', '-in', 'ca.pem').toString().trim();
  writeFileSync(`${dir}/capath/${hash}.0`, readFileSync(`${dir}/ca.pem`));
}

function listen<T extends NetServer>(server: T): Promise<T> {
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)));
}
const portOf = (server: NetServer) => (server.address() as { port: number }).port;
const close = (server: NetServer | undefined) => new Promise<void>((done) => (server ? server.close(() => done()) : done()));

describe('HTTPS from Python apps (Pyodide 3.14 on Node\'s TLS)', () => {
  const scratch = scratchDir('interpool-tls-');
  const tls = scratch.dir;
  /** Where SSL_CERT_FILE is, beside a file the apps must not see. */
  const trust = scratchDir('interpool-trust-');
  let https: HttpsServer;
  /** Accepts TCP, and resets the connection when the client's first TLS bytes arrive. */
  let resetsHandshake: NetServer;
  /** Accepts TCP, and closes the connection (no reset) when the client's first TLS bytes arrive. */
  let closesHandshake: NetServer;
  let silent: Service;
  /** Accepts TCP and holds each connection until the test releases it: a gate. */
  let holds: NetServer;
  const held = new Set<Socket>();
  const sockets = new Set<Socket>();
  const saved = new Map<string, string | undefined>();
  let t: TestServer;
  let base: string;

  const outcome = async (app: string, query: Record<string, string>): Promise<Outcome> => {
    const response = await fetch(`${t.url}${app}/fetch?${new URLSearchParams(query)}`);
    expect(response.status).toBe(200);
    return (await response.json()) as Outcome;
  };
  const served = async (): Promise<number> => ((await (await fetch(`${t.url}/tls/served`)).json()) as { served: number }).served;

  beforeAll(async () => {
    makeCertificates(tls);
    writeFileSync(`${trust.dir}/ca.pem`, readFileSync(`${tls}/ca.pem`));
    writeFileSync(`${trust.dir}/server.key`, readFileSync(`${tls}/server.key`));
    https = await listen(createHttpsServer({
      key: readFileSync(`${tls}/server.key`), cert: readFileSync(`${tls}/server.pem`),
      // A client certificate is asked for and reported, not required (nor verified: with
      // the CA here, the server would send it along, and the client see it in the chain).
      requestCert: true, rejectUnauthorized: false,
    }, (request, response) => {
      const socket = request.socket as TLSSocket;
      if (request.url === '/reset') {
        // Headers and part of the body, then a reset of the TCP connection under the TLS.
        const tcp = [...sockets].find((raw) => raw.remotePort === socket.remotePort)!;
        response.writeHead(200, { 'Content-Length': '1000' });
        response.write('partial', () => tcp.resetAndDestroy());
        return;
      }
      if (request.url === '/silent') return; // never answers
      if (request.url === '/big') {
        response.end(BIG);
        return;
      }
      const clientName = socket.getPeerCertificate().subject?.CN ?? 'none';
      response.end(`hello over TLS; sni=${String(socket.servername)}; client=${String(clientName)}`);
    }));
    https.on('connection', (socket: Socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)); });
    resetsHandshake = await listen(createNetServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => socket.resetAndDestroy());
    }));
    closesHandshake = await listen(createNetServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => socket.end());
    }));
    silent = await startSilentService();
    holds = await listen(createNetServer((socket) => {
      socket.on('error', () => {});
      held.add(socket);
    }));
    base = `https://localhost:${portOf(https)}`;
    for (const name of ENV) saved.set(name, process.env[name]);
    // The apps' environment (os.environ is the server's): the private CA is the default trust store.
    Object.assign(process.env, { TLS_DIR: tls, SSL_CERT_FILE: `${trust.dir}/ca.pem`, REQUESTS_CA_BUNDLE: `${trust.dir}/ca.pem` });
    delete process.env.SSL_CERT_DIR;
    delete process.env.CURL_CA_BUNDLE;
    const config = {
      timeout: 30,
      // The scratch directory is made visible to the apps (read-only) as a Python path.
      pythonPath: [DIST_PACKAGES, tls],
      apps: [
        { mount: '/tls', app: APP, workers: 1 },
        { mount: '/tls-timeout', app: APP, workers: 1, timeout: 1, timeoutGrace: 5 },
        { mount: '/tls2', app: APP, workers: 2 },
        { mount: '/tls312', app: APP, workers: 1, python: '3.12' },
      ],
    };
    writeFileSync(`${tls}/interpool.json`, JSON.stringify(config));
    t = await startTestServer(['--config', `${tls}/interpool.json`]);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    for (const socket of sockets) socket.destroy();
    for (const socket of held) socket.destroy();
    await Promise.all([close(https), close(resetsHandshake), close(closesHandshake), close(holds), silent?.stop()]);
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    scratch.remove();
    trust.remove();
  });

  it('urllib, http.client, requests and an ssl socket verify the private CA and send SNI, with and without a timeout', async () => {
    const clients = ['urllib', 'httpclient', 'socket', ...(missing.length === 0 ? ['requests'] : [])];
    for (const client of clients) {
      for (const timeout of [undefined, '5']) {
        const trust = client === 'requests' ? 'cafile' : 'default';
        const result = await outcome('/tls', { url: `${base}/hello`, client, trust, ...(timeout ? { timeout } : {}) });
        expect(result, `${client} timeout=${timeout}`).toMatchObject({ ok: true, status: 200, body: 'hello over TLS; sni=localhost; client=none' });
      }
    }
    if (missing.length === 0) {
      // requests's default trust: REQUESTS_CA_BUNDLE.
      expect(await outcome('/tls', { url: `${base}/hello`, client: 'requests', trust: 'default' })).toMatchObject({ ok: true, status: 200 });
    }
  }, 60_000);

  it('reads a body of many TLS records whole, with and without a timeout', async () => {
    for (const client of ['urllib', 'socket']) {
      for (const timeout of [undefined, '10']) {
        const result = await outcome('/tls', { url: `${base}/big`, client, ...(timeout ? { timeout } : {}) });
        expect(result.ok, `${client} timeout=${timeout}`).toBe(true);
        expect(result.body!.length).toBe(BIG.length);
        expect(result.body === BIG).toBe(true);
      }
    }
  }, 60_000);

  it('takes the trust store from SSL_CERT_FILE, cafile, capath or cadata; the system bundle does not trust the private CA', async () => {
    for (const trust of ['default', 'cafile', 'capath', 'cadata']) {
      expect(await outcome('/tls', { url: `${base}/hello`, client: 'urllib', trust }), trust).toMatchObject({ ok: true, status: 200 });
    }
    const system = await outcome('/tls', { url: `${base}/hello`, client: 'urllib', trust: 'system' });
    expect(system).toMatchObject({ ok: false, error: 'URLError', cause: { type: 'SSLCertVerificationError', verify_code: 20 } });
  }, 60_000);

  it('refuses a certificate from an untrusted CA with ssl.SSLCertVerificationError, in every client', async () => {
    const clients = ['urllib', 'httpclient', 'socket', ...(missing.length === 0 ? ['requests'] : [])];
    for (const client of clients) {
      const result = await outcome('/tls', { url: `${base}/hello`, client, trust: 'other' });
      expect(result.ok, client).toBe(false);
      expect(result.cause, client).toEqual({
        type: 'SSLCertVerificationError', is_ssl_error: true, is_os_error: true, verify_code: 20,
        verify_message: 'unable to get local issuer certificate',
        message: expect.stringContaining('[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate'),
      });
    }
  }, 60_000);

  it('refuses a wrong host name or IP address with ssl.SSLCertVerificationError', async () => {
    const byName = await outcome('/tls', { url: `${base}/hello`, client: 'socket', host: 'wrong.example' });
    expect(byName.cause).toMatchObject({
      type: 'SSLCertVerificationError', verify_code: 62, verify_message: "Hostname mismatch, certificate is not valid for 'wrong.example'.",
    });
    const byAddress = await outcome('/tls', { url: `https://127.0.0.1:${portOf(https)}/hello`, client: 'urllib' });
    expect(byAddress).toMatchObject({ ok: false, error: 'URLError' });
    expect(byAddress.cause).toMatchObject({
      type: 'SSLCertVerificationError', verify_code: 64, verify_message: "IP address mismatch, certificate is not valid for '127.0.0.1'.",
    });
    if (missing.length === 0) {
      // urllib3 1.26 checks the name itself, in getpeercert()'s dict (as under CPython).
      const byRequests = await outcome('/tls', { url: `https://127.0.0.1:${portOf(https)}/hello`, client: 'requests', trust: 'cafile' });
      expect(byRequests).toMatchObject({ ok: false, error: 'SSLError', message: expect.stringContaining("hostname '127.0.0.1' doesn't match 'localhost'") });
    }
  }, 60_000);

  it('connects without verification only when told to: CERT_NONE with check_hostname off', async () => {
    const result = await outcome('/tls', { url: `https://127.0.0.1:${portOf(https)}/hello`, client: 'httpclient', trust: 'none' });
    expect(result).toMatchObject({ ok: true, status: 200, body: 'hello over TLS; sni=false; client=none' });
    // An unverified peer's certificate is not decoded (as CPython), but its bytes are there.
    expect(result.peer!.cert).toEqual({});
    expect(result.peer!.der_sha256).toMatch(/^[0-9a-f]{64}$/);
  }, 60_000);

  it('describes the connection: getpeercert() as a dict and as DER, version() and cipher()', async () => {
    const result = await outcome('/tls', { url: `${base}/hello`, client: 'socket', trust: 'cafile' });
    expect(result).toMatchObject({ ok: true, status: 200 });
    const pem = readFileSync(`${tls}/server.pem`, 'utf8');
    const x509 = new X509Certificate(pem);
    expect(result.peer!.der_sha256).toBe(createHash('sha256').update(x509.raw).digest('hex'));
    expect(result.peer!.cert).toEqual({
      subject: [[['organizationName', 'interpool tests']], [['commonName', 'localhost']]],
      issuer: [[['commonName', 'interpool test ca']]],
      version: 3,
      serialNumber: x509.serialNumber.toUpperCase(),
      notBefore: expect.stringMatching(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT$/),
      notAfter: expect.stringMatching(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT$/),
      subjectAltName: [['DNS', 'localhost']],
    });
    expect(result.peer!.version).toBe('TLSv1.3');
    expect(result.peer!.cipher).toEqual([expect.stringMatching(/^TLS_/), 'TLSv1.3', expect.any(Number)]);
  }, 60_000);

  it('presents a client certificate loaded with load_cert_chain, its key encrypted or not', async () => {
    const cases = [['urllib', '1'], ['urllib', 'encrypted'], ...(missing.length === 0 ? [['requests', '1']] : [])];
    for (const [client, cert] of cases) {
      const result = await outcome('/tls', { url: `${base}/hello`, client: client!, trust: 'cafile', cert: cert! });
      expect(result, `${client} ${cert}`).toMatchObject({ ok: true, body: 'hello over TLS; sni=localhost; client=interpool test client' });
    }
  }, 60_000);

  it('the context says what it holds; the system bundle is visible (read-only) at its path', async () => {
    const facts = await (await fetch(`${t.url}/tls/facts`)).json();
    expect(facts).toEqual({
      verification_error_is_value_error: true,
      system_bundle_visible: existsSync('/etc/ssl/certs/ca-certificates.crt'),
      certifi_where_visible: existsSync('/etc/ssl/certs/ca-certificates.crt'),
      cafile_default: '/etc/ssl/certs/ca-certificates.crt',
      cert_store_stats: { x509: 1, crl: 0, x509_ca: 1 },
      ca_subjects: [[[['commonName', 'interpool test ca']]]],
      wrong_password: 'SSLError',
      wrap_bio: "SSLContext.wrap_bio (TLS over memory buffers, as asyncio's TLS streams use) is not available in an interpool Python interpreter (Pyodide)",
      // SSL_CERT_FILE is copied in, not its directory mounted: the key beside it stays out of sight.
      beside_trust_file: ['ca.pem'],
    });
  }, 60_000);

  it('raises TimeoutError when the handshake or a read outlasts the socket timeout', async () => {
    const handshake = await outcome('/tls', { url: `https://localhost:${silent.port}/`, client: 'urllib', timeout: '0.5' });
    expect(handshake).toMatchObject({ ok: false, cause: { type: 'TimeoutError' } });
    const read = await outcome('/tls', { url: `${base}/silent`, client: 'httpclient', trust: 'cafile', timeout: '0.5' });
    expect(read).toMatchObject({ ok: false, error: 'TimeoutError' });
  }, 60_000);

  it('every interpreter of an app verifies (two of them, restored from the app\'s snapshot when there was one in time)', async () => {
    // Another mount of the same app makes the snapshot; on a loaded machine the waiting
    // interpreters may give up on it and boot cold, so it is not asserted here.
    await waitFor(() => t.logs.filter((line) => line.app === '/tls2' && line.msg === 'interpreter booted').length >= 2, 60_000, 'both /tls2 interpreters booted');
    // One interpreter is kept busy (a handshake with a server that holds it), so that the
    // other one serves the next calls: so both are asked, whichever was restored.
    const busy = outcome('/tls2', { url: `https://localhost:${portOf(holds)}/`, client: 'urllib' });
    await waitFor(() => held.size > 0, 30_000, 'the held connection');
    const other = await outcome('/tls2', { url: `${base}/hello` });
    const refused = await outcome('/tls2', { url: `${base}/hello`, trust: 'other' });
    for (const socket of held) socket.destroy();
    const first = await busy;
    expect(first).toMatchObject({ ok: false });
    expect(other).toMatchObject({ ok: true, body: 'hello over TLS; sni=localhost; client=none' });
    expect(refused).toMatchObject({ ok: false, cause: { type: 'SSLCertVerificationError', verify_code: 20 } });
    expect(new Set([first.interpreter, other.interpreter, refused.interpreter]).size).toBe(2);
  }, 90_000);

  it('--timeout ends a handshake that waits with no socket timeout, and keeps the interpreter', async () => {
    const before = ((await (await fetch(`${t.url}/tls-timeout/served`)).json()) as { served: number }).served;
    const response = await fetch(`${t.url}/tls-timeout/fetch?${new URLSearchParams({ url: `https://localhost:${silent.port}/`, client: 'urllib' })}`);
    expect(response.status).toBe(504);
    expect(((await (await fetch(`${t.url}/tls-timeout/served`)).json()) as { served: number }).served).toBe(before + 2);
    expect(t.logs.some((l) => l.app === '/tls-timeout' && /terminating its worker/.test(String(l.msg)))).toBe(false);
  }, 60_000);

  it('a peer that resets (or closes) the connection mid-handshake or mid-response is an exception in the app; the worker serves on', async () => {
    const before = await served();
    const handshake = await outcome('/tls', { url: `https://localhost:${portOf(resetsHandshake)}/`, client: 'httpclient', timeout: '5' });
    expect(handshake).toMatchObject({ ok: false, error: 'ConnectionResetError' });
    const handshakeNoTimeout = await outcome('/tls', { url: `https://localhost:${portOf(resetsHandshake)}/`, client: 'urllib' });
    expect(handshakeNoTimeout).toMatchObject({ ok: false, error: 'URLError', cause: { type: 'ConnectionResetError' } });
    for (const timeout of [undefined, '5']) {
      const response = await outcome('/tls', { url: `${base}/reset`, client: 'httpclient', ...(timeout ? { timeout } : {}) });
      expect(response, `timeout=${timeout}`).toMatchObject({ ok: false, error: 'ConnectionResetError' });
    }
    // A close instead of a reset, during the handshake: CPython's SSLEOFError.
    const closed = await outcome('/tls', { url: `https://localhost:${portOf(closesHandshake)}/`, client: 'httpclient' });
    expect(closed).toMatchObject({ ok: false, error: 'SSLEOFError', message: expect.stringContaining('EOF occurred in violation of protocol') });
    // The same interpreter (its count goes on), and no worker failed.
    expect(await served()).toBe(before + 6);
    expect((await outcome('/tls', { url: `${base}/hello` })).ok).toBe(true);
    expect(t.logs.filter((l) => /worker.*(failed|died|exited)/i.test(String(l.msg)))).toEqual([]);
  }, 60_000);

  it('--python 3.12 has no socket layer, so no TLS: importing ssl fails the boot at once, naming --python 3.14', async () => {
    expect((await fetch(`${t.url}/tls312/served`)).status).toBe(503);
    const failure = await waitFor(() => t.logs.find((l) => l.app === '/tls312' && /failed to boot/.test(String(l.msg))), 30_000, 'the boot failure line');
    expect(failure.msg).toMatch(/ModuleNotFoundError: the module 'ssl' is not available under --python 3\.12 .*serve this app with --python 3\.14/);
  }, 60_000);
});
