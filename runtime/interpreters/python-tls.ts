/**
 * TLS for Python interpreters (Pyodide 314): ssl.SSLContext on Node's own TLS (node:tls).
 *
 * Pyodide 314's `ssl` module is a stub: its SSLSocket hands the connected socket to Node
 * with no options at all, so there was no certificate check, no host-name check and no
 * SNI, and it forgot the socket's timeout (a socket with one then failed with
 * BlockingIOError or RemoteDisconnected). Here the Python side (runtime/ssl_context.py,
 * installed as `interpool_ssl_context`) keeps the context's settings — trust store,
 * verify_mode, check_hostname, client certificate, versions, ciphers, ALPN — reads its
 * files as CPython would (paths are the app's), and at each handshake calls the global
 * TLS_ENTRY defined here with them. This side upgrades the Python socket's Node socket
 * with `tls.connect({ socket })`, waits for the handshake (bounded by the socket's
 * timeout, ended by a request timeout's interrupt), judges the peer as OpenSSL would for
 * CPython, and answers in JSON: the connection's description, or what went wrong, which
 * the Python side raises as CPython's exception (ssl.SSLCertVerificationError with
 * verify_code and verify_message, ConnectionResetError, TimeoutError, ...).
 *
 * After the handshake the Python socket reads and writes plaintext through Pyodide's
 * socket layer as before (python-network.ts), so recv/send, makefile and timeouts are
 * the socket module's own.
 *
 * Like the hashlib functions (python-hashlib.ts), the Python side keeps no JavaScript
 * reference (the entry is looked up at each call), so a memory snapshot may hold
 * contexts an app made at import; this module defines the global in every worker.
 */
import { readFileSync, statSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP, Socket } from 'node:net';
import { dirname } from 'node:path';
import { Duplex } from 'node:stream';
import { checkServerIdentity, connect, createSecureContext, rootCertificates, type SecureContext, type TLSSocket } from 'node:tls';
import { ControlSlot } from '../protocol.ts';

/** The global the Python side calls (runtime/ssl_context.py `_ENTRY`). */
const TLS_ENTRY = 'interpoolTls';
const SSL_SOURCE = readFileSync(new URL('../ssl_context.py', import.meta.url), 'utf8');
const MODULE_DIR = '/interpool';
/** How often the interrupt slot is looked at during a handshake (as python-network.ts). */
const WATCH_MS = 20;
/** Secure contexts kept: one with a whole CA bundle takes ~30 ms to make. */
const CONTEXT_CACHE_SIZE = 8;

/** The system's trust store (Debian's layout; OpenSSL's defaults point there). */
export const SYSTEM_CA_FILE = '/etc/ssl/certs/ca-certificates.crt';
const SYSTEM_CA_DIRS = ['/etc/ssl/certs', '/usr/share/ca-certificates'];

/** Pyodide's record of one Python socket (internal to its Node socket layer). */
export interface NodeSock {
  wcgSocket: Channel | null;
  sock_ops: Record<string, (sock: NodeSock, ...args: unknown[]) => unknown>;
}
/** The socket object Pyodide's socket layer reads and writes through (its `wcgSocket`). */
interface Channel {
  _socket?: { destroy(error?: Error): void };
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  closed: Promise<void>;
  close(): Promise<void>;
  startTls(): Channel;
}
export interface TlsRuntime {
  FS: {
    mkdirTree(path: string): void;
    writeFile(path: string, data: string | Uint8Array): void;
    /** Pyodide 314 adds NODESOCKFS, its Node socket layer. */
    filesystems: object;
  };
  runPython(code: string): unknown;
}

/** What the Python side asks for at a handshake (ssl_context.py `_handshake_options`). */
interface HandshakeOptions {
  /** The name to check the certificate against (server_hostname), or null. */
  hostname: string | null;
  verify: boolean;
  checkHostname: boolean;
  cert: string | null;
  key: string | null;
  passphrase: string | null;
  ciphers: string | null;
  minVersion: string | null;
  maxVersion: string | null;
  alpn: string[] | null;
  /** The socket's timeout in seconds, or null for none. */
  timeout: number | null;
}

type Outcome =
  | { kind: 'ok'; protocol: string | null; cipher: string | null; cipherVersion: string | null; bits: number; alpn: string | null; der: string | null }
  | { kind: 'verify'; code: number; message: string }
  | { kind: 'ssl'; reason: string; message: string }
  | { kind: 'eof' | 'timeout' | 'interrupted' | 'unsupported' }
  | { kind: 'errno'; code: string };

/** The runtime of this worker and its shared control block (set at each load). */
let current: { pyodide: TlsRuntime; control: Int32Array } | undefined;
/** Sockets whose peer reset them: a read then fails with ECONNRESET (python-network.ts). */
export const resetSockets = new WeakSet<NodeSock>();
const contexts = new Map<string, SecureContext>();

/**
 * Give this interpreter's ssl module Node's TLS (Pyodide 314, which has the socket
 * layer). Call after every load (python-network.ts enableNetwork), before mountPaths
 * (python.ts: a directory mounted there hides a trust file copied here, and shows the
 * same file) and before the app's import.
 */
export function enableTls(pyodide: TlsRuntime, control: Int32Array): void {
  current = { pyodide, control };
  if (!(TLS_ENTRY in globalThis)) Object.defineProperty(globalThis, TLS_ENTRY, { value: tls });
  writeModule(pyodide);
  copyTrustFiles(pyodide);
  pyodide.runPython('import interpool_ssl_context; interpool_ssl_context.install()');
}

/**
 * Without a socket layer (Pyodide 0.27, --python 3.12) there is no TLS either: importing
 * ssl fails at once, naming the setting to change, instead of Pyodide's advice to
 * install a package from the network.
 */
export function refuseTls(pyodide: TlsRuntime): void {
  writeModule(pyodide);
  pyodide.runPython('import interpool_ssl_context; interpool_ssl_context.refuse()');
}

function writeModule(pyodide: TlsRuntime): void {
  // The source in the file system for tracebacks (the file system is not in a snapshot).
  pyodide.FS.mkdirTree(MODULE_DIR);
  pyodide.FS.writeFile(`${MODULE_DIR}/interpool_ssl_context.py`, SSL_SOURCE);
  pyodide.runPython(`import sys; sys.path.count(${JSON.stringify(MODULE_DIR)}) or sys.path.insert(0, ${JSON.stringify(MODULE_DIR)})`);
}

/**
 * The directories of the trust store, made visible read-only to the interpreters at
 * their host paths (python.ts mountPaths): the system's certificate directory with its
 * bundle (and the files its links point to), and the directories the server's
 * environment names in SSL_CERT_DIR.
 */
export function trustStoreDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const candidates = [...SYSTEM_CA_DIRS, ...(env.SSL_CERT_DIR ?? '').split(':')];
  return [...new Set(candidates.filter((dir) => dir.startsWith('/') && statSync(dir, { throwIfNoEntry: false })?.isDirectory()))];
}

/**
 * The CA files the server's environment names (SSL_CERT_FILE, and requests's
 * REQUESTS_CA_BUNDLE): copied into the interpreter's file system at their paths, not
 * mounted, so that the files beside them (a private key in /etc/ssl/private, say) stay
 * out of the app's sight. A copy inside a directory mounted afterwards is hidden by the
 * mount, which shows the same file.
 */
function copyTrustFiles(pyodide: TlsRuntime, env: NodeJS.ProcessEnv = process.env): void {
  for (const file of new Set([env.SSL_CERT_FILE, env.REQUESTS_CA_BUNDLE])) {
    if (!file?.startsWith('/') || !statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
    pyodide.FS.mkdirTree(dirname(file));
    pyodide.FS.writeFile(file, readFileSync(file));
  }
}

/** What Python calls (ssl_context.py); every argument is already checked there. */
const tls = {
  handshake,
  /** A certificate (DER) as CPython's getpeercert() dict, in JSON (ssl_context.py makes the tuples). */
  describe(der: Uint8Array): string {
    return JSON.stringify(describeCertificate(new X509Certificate(der)));
  },
  /** Node's own CA bundle (Mozilla's), for a default trust store where the system has none. */
  bundledRoots(): string {
    return rootCertificates.join('\n');
  },
  /** Why this certificate and key cannot be used together, or '' when they can. */
  checkKeyPair(cert: string, key: string, passphrase: string | null): string {
    try {
      const certificate = new X509Certificate(cert);
      const privateKey = createPrivateKey(passphrase === null ? key : { key, passphrase });
      return certificate.checkPrivateKey(privateKey) ? '' : 'KEY_VALUES_MISMATCH';
    } catch (error) {
      return (error as Error).message.includes('passphrase') || (error as Error).message.includes('decrypt') ? 'BAD_DECRYPT' : 'PEM_LIB';
    }
  },
  /** Whether OpenSSL selects any cipher from this list. */
  checkCiphers(ciphers: string): boolean {
    try {
      createSecureContext({ ciphers });
      return true;
    } catch {
      return false;
    }
  },
};

/**
 * Upgrade the connected socket `fd` to TLS and wait for the handshake. `caBundle` is
 * the context's trust store as PEM (null: it trusts no CA, as a CPython context where
 * none was loaded).
 */
async function handshake(fd: number, optionsJson: string, caBundle: string | null): Promise<string> {
  return JSON.stringify(await upgrade(fd, JSON.parse(optionsJson) as HandshakeOptions, caBundle));
}

async function upgrade(fd: number, options: HandshakeOptions, caBundle: string | null): Promise<Outcome> {
  const { pyodide, control } = current!;
  const { NODESOCKFS } = pyodide.FS.filesystems as { NODESOCKFS?: { getSocket(fd: number): NodeSock | null } };
  const sock = NODESOCKFS?.getSocket(fd);
  const plain = sock?.wcgSocket?._socket;
  if (!sock || typeof sock.sock_ops.startTls !== 'function') return { kind: 'unsupported' };
  if (!(plain instanceof Socket) || plain.destroyed) return { kind: 'errno', code: 'ENOTCONN' };
  let secureContext: SecureContext;
  try {
    secureContext = contextFor(options, caBundle);
  } catch (error) {
    return sslFailure(error as NodeError);
  }
  const sni = options.hostname !== null && isIP(options.hostname) === 0 ? options.hostname : undefined;
  let secure: TLSSocket | undefined;
  // Pyodide's own upgrade (its socket layer's startTls) swaps the socket's streams over
  // to what the socket's startTls() returns: here, a TLS socket made with the context.
  sock.wcgSocket!.startTls = () => {
    secure = connect({
      socket: plain, secureContext, servername: sni, ALPNProtocols: options.alpn ?? undefined,
      // Judged here after the handshake, as verify_mode and check_hostname say.
      rejectUnauthorized: false, checkServerIdentity: () => undefined,
    });
    return channelOf(secure, sock);
  };
  const started = await (sock.sock_ops.startTls(sock) as Promise<number>);
  if (started < 0 || !secure) return { kind: 'errno', code: 'ENOTCONN' };
  const settled = await settle(secure, options.timeout, control);
  if (settled !== 'ok') {
    secure.destroy();
    return settled;
  }
  const failure = judge(secure, options);
  if (failure) {
    secure.destroy();
    return failure;
  }
  return describeConnection(secure);
}

interface NodeError extends Error {
  code?: string;
  syscall?: string;
  reason?: string;
  library?: string;
}

/** The handshake's end: done, failed, timed out or interrupted. */
function settle(secure: TLSSocket, timeout: number | null, control: Int32Array): Promise<'ok' | Outcome> {
  return new Promise((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    const done = (outcome: 'ok' | Outcome) => {
      for (const timer of timers) clearTimeout(timer);
      secure.off('secureConnect', onSecure).off('error', onError).off('close', onClose);
      resolve(outcome);
    };
    const onSecure = () => done('ok');
    const onError = (error: NodeError) => done(handshakeFailure(error));
    const onClose = () => done({ kind: 'eof' });
    secure.once('secureConnect', onSecure).once('error', onError).once('close', onClose);
    if (timeout !== null) timers.push(setTimeout(() => done({ kind: 'timeout' }), timeout * 1000));
    const watch = setInterval(() => {
      if (Atomics.load(control, ControlSlot.INTERRUPT) === 0) return;
      // Consumed here: the Python side raises the timeout itself (ssl_context.py).
      Atomics.store(control, ControlSlot.INTERRUPT, 0);
      done({ kind: 'interrupted' });
    }, WATCH_MS);
    timers.push(watch);
  });
}

function handshakeFailure(error: NodeError): Outcome {
  // Node's words for an end of the stream before the handshake finished.
  if (/disconnected before secure TLS connection/.test(error.message)) return { kind: 'eof' };
  if (error.syscall && error.code) return { kind: 'errno', code: error.code };
  return sslFailure(error);
}

/** An OpenSSL error as CPython names it: "[SSL: REASON] reason". */
function sslFailure(error: NodeError): Outcome {
  const reason = (error.code ?? 'UNKNOWN').replace(/^ERR_SSL_/, '').replace(/^ERR_OSSL_/, '');
  return { kind: 'ssl', reason, message: `[SSL: ${reason}] ${error.reason ?? error.message}` };
}

/** The peer's certificate, judged as OpenSSL does for CPython: the chain, then the name. */
function judge(secure: TLSSocket, options: HandshakeOptions): Outcome | undefined {
  if (!options.verify) return undefined;
  if (!secure.authorized) {
    let code = String(secure.authorizationError ?? 'UNSPECIFIED');
    // Node's OpenSSL goes on verifying after the first error and reports the last one,
    // CPython's stops at the first: a leaf whose issuer is unknown is first "unable to
    // get local issuer certificate", then "unable to verify the first certificate".
    if (code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') code = 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY';
    const known = VERIFY_ERRORS[code];
    return { kind: 'verify', code: known?.[0] ?? 1, message: known?.[1] ?? code.toLowerCase().replaceAll('_', ' ') };
  }
  if (options.checkHostname && options.hostname !== null) {
    const peer = secure.getPeerCertificate();
    if (checkServerIdentity(options.hostname, peer) !== undefined) {
      return isIP(options.hostname) === 0
        ? { kind: 'verify', code: 62, message: `Hostname mismatch, certificate is not valid for '${options.hostname}'.` }
        : { kind: 'verify', code: 64, message: `IP address mismatch, certificate is not valid for '${options.hostname}'.` };
    }
  }
  return undefined;
}

/**
 * OpenSSL's verification errors (X509_V_ERR_*), as Node names them, with OpenSSL 3's
 * number and text: what CPython puts in verify_code and verify_message.
 */
const VERIFY_ERRORS: Record<string, [number, string]> = {
  UNABLE_TO_GET_ISSUER_CERT: [2, 'unable to get issuer certificate'],
  UNABLE_TO_GET_CRL: [3, 'unable to get certificate CRL'],
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: [4, "unable to decrypt certificate's signature"],
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: [6, 'unable to decode issuer public key'],
  CERT_SIGNATURE_FAILURE: [7, 'certificate signature failure'],
  CERT_NOT_YET_VALID: [9, 'certificate is not yet valid'],
  CERT_HAS_EXPIRED: [10, 'certificate has expired'],
  ERROR_IN_CERT_NOT_BEFORE_FIELD: [13, "format error in certificate's notBefore field"],
  ERROR_IN_CERT_NOT_AFTER_FIELD: [14, "format error in certificate's notAfter field"],
  DEPTH_ZERO_SELF_SIGNED_CERT: [18, 'self-signed certificate'],
  SELF_SIGNED_CERT_IN_CHAIN: [19, 'self-signed certificate in certificate chain'],
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: [20, 'unable to get local issuer certificate'],
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: [21, 'unable to verify the first certificate'],
  CERT_CHAIN_TOO_LONG: [22, 'certificate chain too long'],
  CERT_REVOKED: [23, 'certificate revoked'],
  INVALID_CA: [24, 'invalid CA certificate'],
  PATH_LENGTH_EXCEEDED: [25, 'path length constraint exceeded'],
  INVALID_PURPOSE: [26, 'unsupported certificate purpose'],
  CERT_UNTRUSTED: [27, 'certificate not trusted'],
  CERT_REJECTED: [28, 'certificate rejected'],
};

function describeConnection(secure: TLSSocket): Outcome {
  const cipher = secure.getCipher() as { name?: string; version?: string } | undefined;
  const peer = secure.getPeerCertificate(false) as { raw?: Buffer } | undefined;
  return {
    kind: 'ok',
    protocol: secure.getProtocol() ?? null,
    cipher: cipher?.name ?? null,
    cipherVersion: cipher?.version ?? null,
    bits: secretBits(cipher?.name ?? ''),
    alpn: typeof secure.alpnProtocol === 'string' ? secure.alpnProtocol : null,
    der: peer?.raw ? peer.raw.toString('base64') : null,
  };
}

/** The cipher's secret bits (CPython's third item of cipher()); Node does not report them. */
function secretBits(name: string): number {
  if (/CHACHA20|AES_?256|CAMELLIA_?256|ARIA_?256/i.test(name)) return 256;
  if (/AES_?128|CAMELLIA_?128|ARIA_?128|SEED/i.test(name)) return 128;
  if (/3DES|DES-CBC3/i.test(name)) return 112;
  return 0;
}

/** A Node TLS context for these settings, shared by the connections that use the same ones. */
function contextFor(options: HandshakeOptions, caBundle: string | null): SecureContext {
  const key = JSON.stringify([caBundle, options.cert, options.key, options.passphrase, options.ciphers, options.minVersion, options.maxVersion]);
  let context = contexts.get(key);
  if (context) {
    contexts.delete(key);
  } else {
    context = createSecureContext({
      ca: caBundle ?? [],
      ...(options.cert !== null && options.key !== null ? { cert: options.cert, key: options.key, passphrase: options.passphrase ?? undefined } : {}),
      ...(options.ciphers !== null ? { ciphers: options.ciphers } : {}),
      ...(options.minVersion !== null ? { minVersion: options.minVersion as 'TLSv1.2' } : {}),
      ...(options.maxVersion !== null ? { maxVersion: options.maxVersion as 'TLSv1.3' } : {}),
    });
    if (contexts.size >= CONTEXT_CACHE_SIZE) contexts.delete(contexts.keys().next().value!);
  }
  contexts.set(key, context);
  return context;
}

/**
 * The TLS socket in the shape Pyodide's socket layer reads and writes through. A reset
 * from the peer is remembered, so that a read then fails with ECONNRESET as in CPython
 * (Pyodide's layer would report the end of the stream).
 */
function channelOf(secure: TLSSocket, sock: NodeSock): Channel {
  const { readable, writable } = Duplex.toWeb(secure) as { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> };
  let settleClosed!: (error?: Error) => void;
  const closed = new Promise<void>((resolve, reject) => {
    settleClosed = (error) => (error ? reject(error) : resolve());
  });
  closed.catch(() => {});
  secure.on('error', (error: NodeError) => {
    if (error.code === 'ECONNRESET') resetSockets.add(sock);
    settleClosed(error);
  });
  secure.on('close', () => settleClosed());
  return {
    _socket: secure,
    readable,
    writable,
    closed,
    close: () => {
      secure.end();
      return closed;
    },
    startTls: () => {
      throw new Error('this socket is already TLS');
    },
  };
}

const LONG_NAMES: Record<string, string> = {
  C: 'countryName', ST: 'stateOrProvinceName', L: 'localityName', O: 'organizationName',
  OU: 'organizationalUnitName', CN: 'commonName', emailAddress: 'emailAddress', serialNumber: 'serialNumber',
  DC: 'domainComponent', street: 'streetAddress', title: 'title', GN: 'givenName', SN: 'surname',
  initials: 'initials', pseudonym: 'pseudonym', UID: 'userId', postalCode: 'postalCode',
  businessCategory: 'businessCategory', jurisdictionC: 'jurisdictionCountryName',
  jurisdictionST: 'jurisdictionStateOrProvinceName', jurisdictionL: 'jurisdictionLocalityName',
  description: 'description', name: 'name', dnQualifier: 'dnQualifier', generationQualifier: 'generationQualifier',
  organizationIdentifier: 'organizationIdentifier',
};

type Name = [string, string][][];

/** CPython's getpeercert() dict, as JSON-able lists (Python makes them tuples). */
function describeCertificate(x509: X509Certificate): Record<string, unknown> {
  const legacy = x509.toLegacyObject() as unknown as {
    subject?: Record<string, string | string[]>; issuer?: Record<string, string | string[]>;
    subjectaltname?: string; infoAccess?: Record<string, string[]>;
    valid_from: string; valid_to: string; serialNumber: string;
  };
  const described: Record<string, unknown> = {
    subject: nameOf(legacy.subject),
    issuer: nameOf(legacy.issuer),
    version: versionOf(x509.raw),
    serialNumber: legacy.serialNumber.toUpperCase(),
    notBefore: legacy.valid_from,
    notAfter: legacy.valid_to,
  };
  if (legacy.subjectaltname) described.subjectAltName = altNamesOf(legacy.subjectaltname);
  const ocsp = legacy.infoAccess?.['OCSP - URI'];
  const issuers = legacy.infoAccess?.['CA Issuers - URI'];
  if (ocsp) described.OCSP = ocsp;
  if (issuers) described.caIssuers = issuers;
  return described;
}

function nameOf(name: Record<string, string | string[]> | undefined): Name {
  const rdns: Name = [];
  for (const [short, values] of Object.entries(name ?? {})) {
    for (const value of Array.isArray(values) ? values : [values]) rdns.push([[LONG_NAMES[short] ?? short, value]]);
  }
  return rdns;
}

/** "DNS:a, IP Address:1.2.3.4" (Node quotes a value that holds a comma) → [["DNS", "a"], ...]. */
function altNamesOf(text: string): [string, string][] {
  const names: [string, string][] = [];
  const pattern = /([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(text)) !== null && match[0] !== '') {
    const value = match[2]!.startsWith('"') ? (JSON.parse(match[2]!) as string) : match[2]!;
    names.push([match[1]!.trim(), value]);
  }
  return names;
}

/** X.509 version (1-3) from the DER: tbsCertificate's optional [0] field. */
function versionOf(der: Buffer): number {
  const headerLength = (at: number) => (der[at + 1]! & 0x80 ? 2 + (der[at + 1]! & 0x7f) : 2);
  const tbs = headerLength(0);
  const first = tbs + headerLength(tbs);
  if (der[first] !== 0xa0) return 1;
  // [0] { INTEGER version }: the integer's one content byte.
  return der[first + headerLength(first) + 2]! + 1;
}
