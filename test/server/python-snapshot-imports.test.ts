// Apps whose imports keep frames alive still snapshot: an app importing pkg_resources
// (and zope.interface, as Pyramid does) boots its second interpreter from the snapshot.
import { describe, expect, it } from 'vitest';
import { startTestServer, waitFor } from './support.ts';

const APP = 'test/fixtures/apps/imports-pkg-resources.py';
const DIST_PACKAGES = '/usr/lib/python3/dist-packages';

describe('snapshots of apps that import pkg_resources', () => {
  for (const python of ['3.12', '3.14']) {
    it(`Python ${python}: the app is snapshotted and its second interpreter starts from it`, async () => {
      const t = await startTestServer([APP, '--python', python, '--python-path', DIST_PACKAGES, '--workers', '2']);
      try {
        const response = await fetch(t.url);
        expect([response.status, await response.text()]).toEqual([200, 'pkg_resources']);
        const booted = await waitFor(() => {
          const lines = t.logs.filter((line) => line.msg === 'interpreter booted');
          return lines.length >= 2 && lines;
        }, 60_000, 'both interpreters booted');
        expect(t.logs.filter((line) => String(line.msg).includes('cannot be snapshotted')).map((line) => line.msg)).toEqual([]);
        const stages = booted.map((line) => (line.stages as { name: string }[]).map((stage) => stage.name));
        expect(stages.filter((names) => names.includes('make snapshot'))).toHaveLength(1);
        expect(stages.filter((names) => names.includes('restore snapshot'))).toHaveLength(1);
      } finally {
        await t.close();
      }
    }, 120_000);
  }
});
