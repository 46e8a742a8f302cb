/**
 * Gates for test/fixtures/apps/gated.ts: a directory of files the test writes to hold
 * the app's boot, choose the version its next import reports, and release the
 * responses it holds open. Events are ordered by these files, never by sleeps.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './support.ts';

export const GATED_APP = 'test/fixtures/apps/gated.ts';

export interface Gates {
  dir: string;
  /** Write one gate file: "version", "boot" ("hold", "broken", "ok"), or a hold's name. */
  set(name: string, value?: string): void;
  /** How many imports have started holding at the boot gate so far. */
  bootsHeld(): number;
}

/** A fresh gate directory, named to the app through GATE_DIR (worker threads and child processes inherit it). */
export function openGates(files: Record<string, string> = {}): Gates {
  const dir = mkdtempSync(join(tmpdir(), 'interpool-gates-'));
  const set = (name: string, value = '') => writeFileSync(join(dir, name), value);
  for (const [name, value] of Object.entries(files)) set(name, value);
  process.env.GATE_DIR = dir;
  return {
    dir,
    set,
    bootsHeld: () => (existsSync(join(dir, 'boot-held')) ? readFileSync(join(dir, 'boot-held'), 'utf8').trim().split('\n').length : 0),
  };
}

export interface Answer {
  version: string;
  worker: number;
  served: number;
}

/** GET the app and parse its one-line answer. */
export async function ask(url: string): Promise<Answer> {
  const text = await (await fetch(url)).text();
  try {
    return JSON.parse(text) as Answer;
  } catch {
    throw new Error(`not the gated app's answer: ${text}`);
  }
}

export interface HeldResponse {
  /** The first line: the app is running this request now. */
  first: Answer;
  /** Everything after the first line, once the response ends. */
  rest: Promise<string>;
}

/**
 * Start `${url}?hold=NAME` and resolve once its first line arrived (the request is
 * running in an interpreter); the response ends once the test sets the gate NAME.
 */
export function holdResponse(url: string, name: string): Promise<HeldResponse> {
  return new Promise((resolve, reject) => {
    request(`${url}?hold=${name}`, { agent: false, headers: { connection: 'close' } }, (res) => {
      let text = '';
      let firstSeen = false;
      let finish!: (rest: string) => void;
      const rest = new Promise<string>((done) => { finish = done; });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        const newline = text.indexOf('\n');
        if (firstSeen || newline < 0) return;
        firstSeen = true;
        const first = JSON.parse(text.slice(0, newline)) as Answer;
        text = text.slice(newline + 1);
        resolve({ first, rest });
      });
      res.on('end', () => finish(text));
      res.on('error', reject);
    }).on('error', reject).end();
  });
}

/**
 * One file gate for the fixtures that take ?gate=PATH (waits-for-gate.ts, overlap-probe.ts,
 * exits-mid-request.ts, spins-on-request.ts): the app writes PATH.entered when the request
 * starts running, then waits until the test writes PATH.
 */
export interface FileGate {
  /** The gate's path, URL-encoded, for a query string. */
  query: string;
  /** Resolves once the request holding at this gate is running in an interpreter. */
  entered(): Promise<void>;
  /** Has the request reached the gate? */
  isEntered(): boolean;
  /** Let the request go on. */
  open(): void;
}

export function fileGate(dir: string, name: string): FileGate {
  const path = join(dir, name);
  const isEntered = () => existsSync(`${path}.entered`);
  return {
    query: `gate=${encodeURIComponent(path)}`,
    isEntered,
    // A bounded poll for the app's file: the bound only turns a hang into a failure.
    entered: async () => { await waitFor(isEntered, 30_000, `the request at gate ${name} to start`); },
    open: () => writeFileSync(path, ''),
  };
}
