/** One load test's results: what the JSON file holds, and writing the three files. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BootResult } from './boot.ts';
import type { ComparisonResult } from './compare.ts';
import type { ServerFeatures } from './features.ts';
import type { MemoryResult } from './memory.ts';
import { renderMarkdown } from './report-markdown.ts';
import { renderSvg } from './report-svg.ts';

export interface ReportMeta {
  date: string;
  command: string;
  quick: boolean;
  runs: number;
  node: string;
  platform: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  loadAverage: number[];
  commit: string;
  dirty: boolean;
  /** Which interpool was measured: the working tree or an exported commit. */
  measured: string;
  features: ServerFeatures;
  elapsedSec: number;
  svgName: string;
}

export interface LoadTestReport {
  meta: ReportMeta;
  comparisons: ComparisonResult[];
  /** Interpreter start and RSS per interpreter (absent from --quick runs). */
  boots?: BootResult[];
  /** RSS idle, per added interpreter, under and after a load, and a second start (`memory`). */
  memory?: MemoryResult[];
  /** What issue 6 asks for that this harness does not measure yet, and why. */
  notMeasured: string[];
}

/** Write <base>.json, <base>.md and <base>.svg; returns their paths. */
export function writeReport(report: LoadTestReport, directory: string, base: string): string[] {
  const files = [join(directory, `${base}.json`), join(directory, `${base}.md`), join(directory, `${base}.svg`)];
  writeFileSync(files[0]!, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(files[1]!, renderMarkdown(report));
  writeFileSync(files[2]!, renderSvg(report));
  return files;
}
