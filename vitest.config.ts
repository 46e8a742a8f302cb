import { defineConfig } from 'vitest/config';

/** The suites that run on the native engine (see test/server/python-engines.ts). */
const NATIVE_SUITES = [
  'test/runtime/native-subinterpreters.test.ts', 'test/server/native-engine.test.ts', 'test/server/python-contract.test.ts', 'test/server/python-timeout.test.ts',
  'test/server/start-response-checks.test.ts', 'test/server/native-stuck.test.ts',
  'test/server/python-frameworks.test.ts', 'test/server/isolation.test.ts', 'test/server/python-isolation.test.ts',
  'test/server/supervision.test.ts', 'test/server/python-interpreter-ends.test.ts', 'test/runtime/native-request.test.ts',
  'test/server/recycle-under-load.test.ts', 'test/runtime/native-adapter-code.test.ts', 'test/server/boot-timeout.test.ts',
];

export default defineConfig({
  test: {
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'] } },
      // A process embeds one CPython: the native engine's suites run once more, in test
      // processes of their own, on Debian 12's CPython 3.11 (the main run tests 3.13).
      { extends: true, test: { name: 'cpython-3.11', include: NATIVE_SUITES, env: { INTERPOOL_TEST_CPYTHON: '3.11' } } },
    ],
    // Real worker pools and real servers: give them room, and do not run every file's
    // pools at once on a 2-core machine.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
