// The standard library under Pyodide where it needs the host: hashlib's key derivation
// (pbkdf2_hmac, scrypt) byte-identical to the host's CPython, with Debian's Werkzeug and
// Django hashing passwords on it; the host's time zones for zoneinfo and pytz, read-only.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support.ts';

const FIXTURE = 'test/fixtures/apps/derives-keys.py';
/** Debian's CPython, with its OpenSSL: the reference the interpreters must match. */
const HOST_PYTHON = '/usr/bin/python3';
const DIST_PACKAGES = '/usr/lib/python3/dist-packages';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer(['--config', 'test/fixtures/python/stdlib.json']);
}, 120_000);
afterAll(() => t?.close());

type Result = ['value', unknown] | ['error', string, string];

async function evaluateOnServer(mount: string, expressions: string[]): Promise<Result[]> {
  const response = await fetch(`${t.url}${mount}`, { method: 'POST', body: JSON.stringify(expressions) });
  expect(response.status).toBe(200);
  return (await response.json()) as Result[];
}

function evaluateOnHost(expressions: string[]): Result[] {
  const output = execFileSync(HOST_PYTHON, [FIXTURE], { input: JSON.stringify(expressions), env: { ...process.env, PYTHONPATH: DIST_PACKAGES } });
  return JSON.parse(output.toString()) as Result[];
}

const PBKDF2 = [
  "hashlib.pbkdf2_hmac('sha256', b'password', b'salt', 1)",
  "hashlib.pbkdf2_hmac('sha256', b'password', b'salt', 4096, 20)",
  "hashlib.pbkdf2_hmac('sha1', b'passwordPASSWORDpassword', b'saltSALTsaltSALTsaltSALTsaltSALTsalt', 4096, 25)",
  "hashlib.pbkdf2_hmac('sha512', bytearray(b'pass\\0word'), memoryview(b'sa\\0lt'), 1000)",
  "hashlib.pbkdf2_hmac('md5', b'', b'', 3, 100)",
  "hashlib.pbkdf2_hmac('SHA256', b'p', b's', 2)",
  "hashlib.pbkdf2_hmac('sha3_256', b'p', b's', 2)",
  "hashlib.pbkdf2_hmac('blake2b', b'p', b's', 2)",
  "hashlib.pbkdf2_hmac('sha512_256', b'p', b's', 2, 7)",
  "hashlib.pbkdf2_hmac(hash_name='sha384', password=b'p', salt=b's', iterations=5, dklen=None)",
  "hashlib.pbkdf2_hmac('nope', b'p', b's', 1)",
  "hashlib.pbkdf2_hmac('shake_128', b'p', b's', 1)",
  "hashlib.pbkdf2_hmac(b'sha256', b'p', b's', 1)",
  "hashlib.pbkdf2_hmac('sha256', 'p', b's', 1)",
  "hashlib.pbkdf2_hmac('sha256', b'p', None, 1)",
  "hashlib.pbkdf2_hmac('sha256', b'p', b's', 1.0)",
  "hashlib.pbkdf2_hmac('sha256', b'p', b's', 0)",
  "hashlib.pbkdf2_hmac('sha256', b'p', b's', 2**40)",
  "hashlib.pbkdf2_hmac('sha256', b'p', b's', 2**70)",
  "hashlib.pbkdf2_hmac('sha256', b'p', b's', 1, 0)",
  "hashlib.pbkdf2_hmac('sha256', b'p', b's', 1, 'x')",
  "hashlib.pbkdf2_hmac('sha256', b'p', b's', 1, 2**40)",
  "'pbkdf2_hmac' in hashlib.__all__",
];

const SCRYPT = [
  "hashlib.scrypt(b'', salt=b'', n=16, r=1, p=1)",
  "hashlib.scrypt(b'password', salt=b'NaCl', n=1024, r=8, p=16)",
  "hashlib.scrypt(b'pleaseletmein', salt=b'SodiumChloride', n=16384, r=8, p=1, dklen=32)",
  "hashlib.scrypt(bytearray(b'p'), salt=memoryview(b's'), n=2**14, r=8, p=1, maxmem=2**25)",
  // the default limit (OpenSSL's 32 MiB) and an explicit one, just below and above the need
  "hashlib.scrypt(b'p', salt=b's', n=2**15, r=8, p=1)",
  "hashlib.scrypt(b'p', salt=b's', n=2**15, r=8, p=1, maxmem=2**26)",
  "hashlib.scrypt(b'p', salt=b's', n=2**10, r=8, p=1, maxmem=128*8*(2**10+2) + 128*8)",
  "hashlib.scrypt(b'p', salt=b's', n=2**10, r=8, p=1, maxmem=128*8*(2**10+2) + 128*8 - 1)",
  "hashlib.scrypt(b'p', salt=b's', n=2**16, r=1, p=1)",
  "hashlib.scrypt(b'p', salt=b's', n=4, r=2**30, p=2)",
  "hashlib.scrypt(b'p', salt=b's', n=4, r=2**33, p=1)",
  "hashlib.scrypt(b'p', salt=b's', n=4, r=0, p=1)",
  "hashlib.scrypt(b'p', salt=b's', n=4, r=1, p=0)",
  "hashlib.scrypt(b'p', salt=b's', n=-2, r=1, p=1)",
  "hashlib.scrypt(b'p', salt=b's', n=3, r=1, p=1)",
  "hashlib.scrypt(b'p', salt=b's', n=True, r=1, p=1)",
  "hashlib.scrypt(b'p', salt=b's', n=2.0, r=1, p=1)",
  "hashlib.scrypt(b'p', salt=b's', n=None, r=1, p=1)",
  "hashlib.scrypt(b'p', salt=b's', r=1, p=1)",
  "hashlib.scrypt(b'p', n=4, r=1, p=1)",
  "hashlib.scrypt(b'p', salt=None, n=4, r=1, p=1)",
  "hashlib.scrypt('p', salt=b's', n=4, r=1, p=1)",
  "hashlib.scrypt(b'p', salt=b's', n=4, r=-1, p=1)",
  "hashlib.scrypt(b'p', salt=b's', n=4, r=1, p=1, maxmem=-1)",
  "hashlib.scrypt(b'p', salt=b's', n=4, r=1, p=1, maxmem=2**31)",
  "hashlib.scrypt(b'p', salt=b's', n=4, r=1, p=1, maxmem=1.5)",
  "hashlib.scrypt(b'p', salt=b's', n=4, r=1, p=1, dklen=0)",
  "hashlib.scrypt(b'p', salt=b's', n=4, r=1, p=1, dklen=1000)",
];

/** Werkzeug's hashes (random salts) checked across the two interpreters, both ways. */
const WERKZEUG = "__import__('werkzeug.security').security";
const DJANGO_HASHER = "__import__('django.contrib.auth.hashers').contrib.auth.hashers.PBKDF2PasswordHasher()";

const ZONES = [
  "str(__import__('zoneinfo').ZoneInfo('Europe/Paris').utcoffset(__import__('datetime').datetime(2024, 7, 1)))",
  "str(__import__('zoneinfo').ZoneInfo('Europe/Paris').utcoffset(__import__('datetime').datetime(2024, 1, 1)))",
  "str(__import__('zoneinfo').ZoneInfo('America/New_York').utcoffset(__import__('datetime').datetime(2024, 7, 1)))",
  "str(__import__('pytz').timezone('Asia/Kolkata').utcoffset(__import__('datetime').datetime(2024, 7, 1)))",
];

for (const [python, mount] of [['3.14', '/eval314'], ['3.12', '/eval312']] as const) {
  describe(`hashlib key derivation under Pyodide ${python}`, () => {
    it('pbkdf2_hmac gives the host CPython\'s bytes, and its exceptions, for the same arguments', async () => {
      expect(await evaluateOnServer(mount, PBKDF2)).toEqual(evaluateOnHost(PBKDF2));
    });

    it('scrypt gives the host CPython\'s bytes, and its exceptions (maxmem included), for the same arguments', async () => {
      expect(await evaluateOnServer(mount, SCRYPT)).toEqual(evaluateOnHost(SCRYPT));
    });

    it('Debian\'s Werkzeug hashes passwords that the host CPython checks, and checks the host\'s', async () => {
      const [[, fromHost]] = evaluateOnHost([`${WERKZEUG}.generate_password_hash('s3cret')`]) as [['value', string]];
      const [[, fromServer], checked, refused] = await evaluateOnServer(mount, [
        `${WERKZEUG}.generate_password_hash('s3cret')`,
        `${WERKZEUG}.check_password_hash(${JSON.stringify(fromHost)}, 's3cret')`,
        `${WERKZEUG}.check_password_hash(${JSON.stringify(fromHost)}, 'wrong')`,
      ]) as [['value', string], Result, Result];
      expect(fromServer).toMatch(/^pbkdf2:sha256:/);
      expect([checked, refused]).toEqual([['value', true], ['value', false]]);
      expect(evaluateOnHost([`${WERKZEUG}.check_password_hash(${JSON.stringify(fromServer)}, 's3cret')`])).toEqual([['value', true]]);
    });
  });

  describe(`time zones under Pyodide ${python}`, () => {
    it('zoneinfo and pytz read the host\'s time zone database: the right UTC offsets for fixed dates', async () => {
      expect(await evaluateOnServer(mount, ZONES)).toEqual([['value', '2:00:00'], ['value', '1:00:00'], ['value', '-1 day, 20:00:00'], ['value', '5:30:00']]);
      expect(await evaluateOnServer(mount, ["__import__('zoneinfo').TZPATH[0]"])).toEqual([['value', '/usr/share/zoneinfo']]);
    });

    it('the time zone database is read-only', async () => {
      const [[kind, type, message]] = await evaluateOnServer(mount, ["open('/usr/share/zoneinfo/interpool-probe', 'w')"]) as [['error', string, string]];
      expect([kind, type]).toEqual(['error', 'OSError']);
      expect(message).toMatch(/Read-only file system/);
      const [[, , overwrite]] = await evaluateOnServer(mount, ["open('/usr/share/zoneinfo/UTC', 'ab')"]) as [['error', string, string]];
      expect(overwrite).toMatch(/Read-only file system/);
    });
  });
}

describe('Django password hashing under Pyodide 3.12 (Debian\'s Django 3.2 imports cgi, removed in 3.13)', () => {
  it('Django\'s PBKDF2 hasher gives the host CPython\'s hash (its import needs pytz, hence the time zones)', async () => {
    const expressions = [`${DJANGO_HASHER}.encode('s3cret', 'fixedsalt', 1000)`];
    const expected = evaluateOnHost(expressions);
    expect(expected[0]![0]).toBe('value');
    expect(await evaluateOnServer('/eval312', expressions)).toEqual(expected);
  });
});
