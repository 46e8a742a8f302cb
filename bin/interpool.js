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
const { main } = await import('../server/cli.ts');
await main(process.argv.slice(2));
