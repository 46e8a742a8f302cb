/**
 * The thread boundary and the scheduler's front are held by lint (eslint.config.js,
 * no-restricted-imports). Each row lints one import as if it were written in a file at
 * `filePath` (the file need not exist: ESLint picks the rules by the path).
 */
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const eslint = new ESLint({ cwd: root, overrideConfigFile: `${root}eslint.config.js` });

async function restrictedImports(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: `${root}${filePath}` });
  return result!.messages.filter((message) => message.ruleId === 'no-restricted-imports').map((message) => message.message);
}

describe('lint boundaries', () => {
  it.each([
    ['server/admin/fixture.ts', "import '../../runtime/worker.ts';", /only the contract/],
    ['server/fixture.ts', "import '../runtime/worker.ts';", /only the contract/],
    ['server/fixture.ts', "import '../runtime/interpreters/native.ts';", /only the contract/],
    ['server/pool/fixture.ts', "import '../../runtime/response-writer.ts';", /only the contract/],
    ['server/fixture.ts', "import './pool/worker-pool.ts';", /only its front/],
    ['server/admin/fixture.ts', "import type { WorkerHandle } from '../pool/worker-handle.ts';", /only its front/],
    ['runtime/interpreters/fixture.ts', "import '../../server/errors.ts';", /never imports server/],
  ])('%s may not: %s', async (filePath, source, message) => {
    const messages = await restrictedImports(filePath, source);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(message);
  });

  it.each([
    ['server/admin/fixture.ts', "import type { ControlSlot } from '../../runtime/protocol.ts';"],
    ['server/fixture.ts', "import type { ApplicationGroup } from './pool/application-group.ts';"],
    ['server/admin/fixture.ts', "import type { ApplicationGroup } from '../pool/application-group.ts';"],
    ['server/pool/fixture.ts', "import type { WorkerHandle } from './worker-handle.ts';"],
    ['server/pool/fixture.ts', "import type { WireRequest } from '../../runtime/protocol.ts';"],
  ])('%s may: %s', async (filePath, source) => {
    expect(await restrictedImports(filePath, source)).toEqual([]);
  });
});
