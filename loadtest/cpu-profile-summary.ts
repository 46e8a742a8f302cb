/**
 * `node loadtest/cpu-profile-summary.ts DIR`: the self time of the hottest functions in
 * each .cpuprofile under DIR (as written by `node --cpu-prof`, one file per thread), to
 * see where a server's CPU goes under load. How the issue-2 profile was made:
 *
 *   node --cpu-prof --cpu-prof-dir=DIR bin/interpool.js serve /=apps/hello.ts --workers 2 \
 *     --bind 127.0.0.1:18181 --log-level warn &
 *   npx autocannon -c 32 -d 10 http://127.0.0.1:18181/ ; kill -TERM %1
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function summarizeProfile(profile: Profile, top: number): string[] {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    total += delta;
    const frame = nodes.get(id)!.callFrame;
    const where = frame.url ? ` ${frame.url.replace(/^.*\/(node_modules\/[^/]+|[^/]+\/[^/]+)$/, '$1')}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + delta);
  });
  const lines = [`  ${Math.round(total / 1000)} ms sampled`];
  for (const [key, time] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${((time / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
  }
  return lines;
}

const directory = process.argv[2];
if (!directory) {
  process.stderr.write('usage: node loadtest/cpu-profile-summary.ts DIR [TOP]\n');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 12);
for (const file of readdirSync(directory).filter((name) => name.endsWith('.cpuprofile')).sort()) {
  const profile = JSON.parse(readFileSync(join(directory, file), 'utf8')) as Profile;
  process.stdout.write([file, ...summarizeProfile(profile, top), ''].join('\n'));
}
