/**
 * A file kept in the cache directory (--cache-dir) between starts, for what is costly to
 * make and can be checked cheaply: Pyodide's runtime snapshot (python-snapshot.ts) and
 * the native engine's compiled adapter (native-adapter-code.ts). A line naming the kind
 * of file, a JSON line holding the key of what it was made from, the body's length and
 * its CRC-32 (padded with spaces so that the body starts 8-byte aligned: Pyodide reads a
 * heap as 32-bit words), then the body. One made for another key, cut short or damaged is
 * refused, saying which; a new one is written aside and renamed over the old.
 */
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { threadId } from 'node:worker_threads';
import { crc32 } from 'node:zlib';

/** Where a kept file lives and the key it must have been made for. */
export interface KeptFile {
  path: string;
  key: string;
}

/** The longest header read: past it, the file is not one of ours. */
const HEADER_MAX = 4096;

/** Write `body` as the kept file: aside first, then renamed over any older one. */
export function writeKeptFile(file: KeptFile, magic: string, body: Uint8Array): void {
  mkdirSync(dirname(file.path), { recursive: true });
  let header = `${magic}\n${JSON.stringify({ key: file.key, length: body.byteLength, crc32: crc32(body) })}`;
  header = `${header.padEnd(Math.ceil((header.length + 1) / 8) * 8 - 1, ' ')}\n`;
  const aside = `${file.path}.${process.pid}-${threadId}.tmp`;
  try {
    const fd = openSync(aside, 'w');
    try {
      writeSync(fd, header);
      for (let written = 0; written < body.byteLength;) written += writeSync(fd, body, written);
    } finally {
      closeSync(fd);
    }
    renameSync(aside, file.path);
  } finally {
    rmSync(aside, { force: true });
  }
}

/**
 * The body of a kept file's bytes, once its header is checked. Throws, saying why, when
 * they are not `kind` (e.g. "an interpool runtime snapshot"), were made for another key,
 * or are cut short or damaged.
 */
export function keptFileBody(bytes: Uint8Array, file: KeptFile, magic: string, kind: string): Uint8Array {
  const first = bytes.indexOf(0x0a);
  const second = first < 0 ? -1 : bytes.indexOf(0x0a, first + 1);
  if (second < 0 || second > HEADER_MAX) throw new Error(`not ${kind}`);
  const [line, json] = new TextDecoder().decode(bytes.subarray(0, second)).split('\n');
  if (line !== magic) throw new Error(`not ${kind}`);
  let header: { key?: unknown; length?: unknown; crc32?: unknown };
  try {
    header = JSON.parse(json!) as typeof header;
  } catch {
    throw new Error('its header is damaged');
  }
  if (header.key !== file.key) throw new Error(`made for ${JSON.stringify(header.key)}, not for ${JSON.stringify(file.key)}`);
  const body = bytes.subarray(second + 1);
  if (body.byteLength !== header.length) throw new Error(`cut short: ${body.byteLength} of ${String(header.length)} bytes`);
  if (crc32(body) !== header.crc32) throw new Error('damaged (checksum mismatch)');
  return body;
}
