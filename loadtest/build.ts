/**
 * Which interpool a load test measures: the working tree, as a user of this checkout
 * would run it, or a committed revision (`--ref`), exported with `git archive` into a
 * temporary directory that shares this checkout's node_modules — so that a figure can be
 * tied to a commit even while the working tree is being edited.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './targets.ts';

export interface Build {
  /** Directory holding bin/, server/, runtime/ and apps/ of the measured interpool. */
  root: string;
  /** Short commit id; for the working tree, of HEAD. */
  commit: string;
  /** The working tree differs from HEAD in bin/, server/, runtime/ or apps/. */
  dirty: boolean;
  description: string;
  /** Remove what was exported. */
  dispose(): void;
}

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

export function prepareBuild(ref: string | undefined): Build {
  if (ref === undefined) {
    let commit = 'unknown';
    let dirty = false;
    try {
      commit = git(['rev-parse', '--short', 'HEAD']);
      dirty = git(['status', '--porcelain', '--', 'bin', 'server', 'runtime', 'apps']) !== '';
    } catch {
      // not a git checkout: measure it anyway
    }
    return { root: ROOT, commit, dirty, description: `the working tree (HEAD ${commit}${dirty ? ' with uncommitted changes' : ''})`, dispose: () => {} };
  }
  let commit: string;
  try {
    commit = git(['rev-parse', '--short', '--verify', `${ref}^{commit}`]);
  } catch {
    throw new Error(`--ref: ${JSON.stringify(ref)} is not a commit of this repository`);
  }
  const root = mkdtempSync(join(tmpdir(), `interpool-${commit}-`));
  // Peers may run as another user (Apache's www-data) and read apps/*.py from here.
  chmodSync(root, 0o755);
  execFileSync('sh', ['-c', 'git archive --format=tar "$1" | tar -x -C "$2"', 'sh', commit, root], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  if (!existsSync(join(root, 'bin/interpool.js'))) throw new Error(`--ref ${ref}: commit ${commit} has no bin/interpool.js`);
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
  // The native engine's addon and the project-built CPython are not in git: the export
  // uses this checkout's, so that its native rows run too. They are built from this
  // checkout's native/src, which the export's runtime must still be able to call.
  const shared = ['build', '.cpython'].filter((dir) => existsSync(join(ROOT, dir)));
  for (const dir of shared) symlinkSync(join(ROOT, dir), join(root, dir), 'dir');
  const sharedNote = shared.length > 0 ? ` and ${shared.join(' and ')}` : '';
  return { root, commit, dirty: false, description: `commit ${commit} (exported from git, node_modules${sharedNote} of this checkout)`, dispose: () => rmSync(root, { recursive: true, force: true }) };
}
