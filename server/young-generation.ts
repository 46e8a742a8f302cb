/**
 * Keep every V8 isolate's young generation at its starting size.
 *
 * Under load V8 grows a busy isolate's young generation (its two semi-spaces) towards
 * their maximum, which Node 24 sets at 64 MiB each on a 64-bit machine, and keeps them:
 * measured with hello.py on 2 Pyodide interpreters, the server grew by 140-150 MiB over
 * 20,000 requests and never gave it back; most of it in the main thread, whose request
 * objects (Fastify's, the ports' messages) all die young. With the growth factor at 1 the
 * semi-spaces stay at their starting size and the same load grows the process by 55-70
 * MiB; every object of a request still dies young, in a scavenge that is then shorter.
 *
 * The heap's maximum cannot be lowered once the isolate exists (--max-semi-space-size is
 * read when it is made), but the growth factor is read at each growth, and V8's flags are
 * the process's: worker isolates made later start with it too.
 */
import { setFlagsFromString } from 'node:v8';

export function boundYoungGenerations(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}
