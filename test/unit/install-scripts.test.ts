import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// npm 12 runs a dependency's install scripts only when package.json's allowScripts
// approves it; npm 11 warns about each one not covered. interpool's own Node 24 comes
// from the `node` package's preinstall, so a missing approval would leave a new user
// without Node 24 and without a word. The lockfile says which packages have scripts.
const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
  dependencies: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};
const lockfile = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
  packages: Record<string, { version?: string; hasInstallScript?: boolean }>;
};

const packagesWithScripts = Object.entries(lockfile.packages)
  .filter(([path, entry]) => path !== '' && entry.hasInstallScript)
  .map(([path, entry]) => ({ name: path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length), version: entry.version }));

describe('install scripts under npm 12', () => {
  it('the node package (interpool\'s Node 24) has its preinstall approved', () => {
    expect(packagesWithScripts.map((p) => p.name)).toContain('node');
    expect(manifest.allowScripts?.node).toBe(true);
  });

  it('every dependency with an install script is decided, none by accident', () => {
    for (const { name, version } of packagesWithScripts) {
      const decided = manifest.allowScripts?.[name] ?? manifest.allowScripts?.[`${name}@${version}`];
      expect(decided, `${name}@${version} has an install script that allowScripts does not decide`).toBeTypeOf('boolean');
    }
  });

  it('approves exactly the locked version: the dependency is pinned, not a range', () => {
    const locked = lockfile.packages['node_modules/node']?.version;
    expect(manifest.dependencies.node).toBe(locked);
  });
});
