/**
 * `--baseline COMMIT`: measure a committed revision beside the working tree in the same
 * comparisons, so that a before/after figure comes from one run (the same machine load,
 * the runs of both interleaved) rather than from two runs minutes apart on a shared
 * machine. Every interpool row of the plan gets a twin that starts the same command from
 * the baseline's export (build.ts); peers and plain Fastify are not duplicated.
 */
import type { Build } from './build.ts';
import type { Comparison } from './compare.ts';
import type { Target } from './targets.ts';

function twin(target: Target, baseline: Build): Target {
  return {
    ...target,
    id: `${target.id}@${baseline.commit}`,
    label: `${target.label} [baseline ${baseline.commit}]`,
    // The same arguments (bin/interpool.js and the app are relative), run from the export.
    launch: (port) => ({ ...target.launch(port), cwd: baseline.root }),
  };
}

export function addBaseline(plan: readonly Comparison[], baseline: Build): Comparison[] {
  return plan.map((comparison) => ({
    ...comparison,
    targets: comparison.targets.flatMap((target) => (target.role === 'interpool' && !target.absent ? [target, twin(target, baseline)] : [target])),
  }));
}
