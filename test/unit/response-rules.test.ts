import { describe, expect, it } from 'vitest';
import { findHeaderFault, parseStatusLine } from '../../server/response-rules.ts';

describe('parseStatusLine', () => {
  it.each([
    ['200 OK', 200, 'OK'],
    ['404 Not Found', 404, 'Not Found'],
    ['299 Custom reason, with punctuation!', 299, 'Custom reason, with punctuation!'],
    ['500 ', 500, ''],
    ['200 Caf\u00e9', 200, 'Caf\u00e9'],
  ])('accepts %j', (status, code, reason) => {
    expect(parseStatusLine(status)).toEqual({ code, reason });
  });

  it.each([
    ['no reason', '200', 'not a 3-digit'],
    ['two digits', '20 OK', 'not a 3-digit'],
    ['four digits', '2000 OK', 'not a 3-digit'],
    ['letters', 'abc OK', 'not a 3-digit'],
    ['1xx is not a final status', '101 Switching Protocols', 'not a 3-digit'],
    ['over 599', '600 Nope', 'not a 3-digit'],
    ['CR LF response splitting', '200 OK\r\nX-Evil: 1', 'CR or LF'],
    ['bare LF', '200 OK\n', 'CR or LF'],
    ['NUL', '200 O\u0000K', 'not a 3-digit'],
    ['empty', '', 'not a 3-digit'],
  ])('refuses %s', (_name, status, why) => {
    const result = parseStatusLine(status);
    expect('fault' in result && result.fault).toContain(why);
  });
});

describe('findHeaderFault', () => {
  it('accepts ordinary headers, repeats and empty values', () => {
    expect(findHeaderFault(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Empty', ''])).toBeUndefined();
  });

  it.each([
    ['CR LF in a value (header injection)', [['X-A', 'v\r\nSet-Cookie: evil=1']], 'CR or LF'],
    ['LF in a value', [['X-A', 'v\nb']], 'CR or LF'],
    ['NUL in a value', [['X-A', 'a\u0000b']], 'control'],
    ['non-latin-1 character', [['X-A', '\u20ac']], 'non-latin-1'],
    ['space in a name', [['X A', 'v']], 'not a valid token'],
    ['colon in a name', [['X:A', 'v']], 'not a valid token'],
    ['empty name', [['', 'v']], 'not a valid token'],
    ['Connection is hop-by-hop', [['Connection', 'close']], 'hop-by-hop'],
    ['Transfer-Encoding is hop-by-hop', [['transfer-encoding', 'chunked']], 'hop-by-hop'],
    ['Keep-Alive is hop-by-hop', [['Keep-Alive', 'timeout=5']], 'hop-by-hop'],
    ['Upgrade is hop-by-hop', [['Upgrade', 'websocket']], 'hop-by-hop'],
  ])('refuses %s', (_name, headers, why) => {
    expect(findHeaderFault((headers as [string, string][]).flat())).toContain(why);
  });
});
