#!/usr/bin/env node
// Entry point for `interpool` / `npx interpool`. Plain JavaScript so that an older Node
// can at least say what is wrong: interpool itself is TypeScript run by Node 24's
// built-in type stripping.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `interpool: needs Node 24 or newer, this is Node ${process.versions.node}; ` +
    'run it through npm scripts or npx, which use the node package installed in node_modules\n',
  );
  process.exit(2);
}
// Node's compile cache, for this thread and, through the environment, for the worker
// threads (which do not inherit enableCompileCache): a TypeScript file found there is
// not stripped again, and the first file a thread strips loads Node's type stripper, a
// WebAssembly module that then stays resident in that thread (~12 MiB each: the main
// thread and every interpreter's worker). The user's NODE_COMPILE_CACHE or
// NODE_DISABLE_COMPILE_CACHE wins.
if (!process.env.NODE_COMPILE_CACHE && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  const { enableCompileCache, constants } = await import('node:module');
  const { status, directory } = enableCompileCache();
  const { ENABLED, ALREADY_ENABLED } = constants.compileCacheStatus;
  if (directory && (status === ENABLED || status === ALREADY_ENABLED)) process.env.NODE_COMPILE_CACHE = directory;
}
// Node opens its inspector (unauthenticated, on 127.0.0.1:9229) on SIGUSR1 unless a
// listener takes the signal: one from the start, before anything loads;
// server/ignored-signals.ts says so in the log once the server has one.
process.on('SIGUSR1', () => {});
const argv = process.argv.slice(2);
if (argv[0] === 'serve') {
  // Before anything else is loaded: this may start the process again, in place.
  const { restartTuned } = await import('../server/process-tuning.ts');
  restartTuned(argv.slice(1));
}
const { main } = await import('../server/cli.ts');
await main(argv);
