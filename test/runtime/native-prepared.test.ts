// A replacement's interpreter made ahead of time (runtime/interpreters/native.ts,
// prepareReplacement; native/src/interpreter.h, PrepareSubinterpreter): once a worker
// that will be recycled has booted, the next worker to boot takes the interpreter the
// addon made meanwhile on a thread of its own, and it serves as a new one would: the
// app imported afresh, a timeout's interrupt reaching the thread that now runs it. Each
// run is a child process (test/fixtures/native/takes-prepared.ts): one process embeds
// one CPython, and a crash is a failed test.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { listNativeBuilds } from '../../native/builds.ts';
import { engineTitle, nativeEngines } from '../server/python-engines.ts';

const SCRIPT = 'test/fixtures/native/takes-prepared.ts';

interface Run {
  a: { stages: string[] };
  b: { stages: string[]; results: Array<{ kind: string; error?: { code: string; message: string }; body: string }>; notes: string[] };
}

for (const engine of nativeEngines()) {
  const version = engine.name.split(' ').at(-1)!;
  describe.skipIf(engine.skip !== undefined)(`a replacement's interpreter prepared on ${engineTitle(engine)}`, () => {
    const isolations = engine.sharedGil ? ['shared-gil'] : ['own-gil', 'shared-gil'];
    for (const isolation of isolations) {
      it(`is taken by the next worker, which serves and is interrupted as a new one would be (${isolation})`, () => {
        const build = listNativeBuilds().find((candidate) => candidate.version === version)!;
        const run = spawnSync(process.execPath, [SCRIPT, build.addon, build.executable, 'test/fixtures/apps/spins-forever.py', isolation], { encoding: 'utf8', timeout: 60_000 });
        if (run.status !== 0) throw new Error(`status ${run.status}, signal ${run.signal}: ${run.stderr}`);
        const { a, b } = JSON.parse(run.stdout) as Run;
        expect(a.stages).toEqual(['load runtime', 'create interpreter', 'import app']);
        expect(b.stages).toEqual(['load runtime', 'take prepared interpreter', 'import app']);
        expect(b.notes).toEqual([]);
        const [spin, after] = b.results;
        expect(spin).toMatchObject({ kind: 'error', error: { code: 'APP_RAISED', message: 'interpool.RequestTimeout: the request ran past --timeout' } });
        // Its own module state: this interpreter served two requests, closed one body.
        expect(after!.kind).toBe('streamed');
        expect(JSON.parse(after!.body)).toEqual({ served: 2, closed: 1, interruptedBy: 'RequestTimeout' });
      });
    }
  });
}
