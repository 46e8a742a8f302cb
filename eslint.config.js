// ESLint: typescript-eslint's recommended rules, plus the thread boundary of DESIGN.md
// held by no-restricted-imports so that nobody has to remember it.
import tseslint from 'typescript-eslint';

const RUNTIME_ONLY_PROTOCOL = { group: ['**/runtime/**', '!**/runtime/protocol.ts'], message: 'server/ imports from runtime/ only the contract, runtime/protocol.ts.' };

export default tseslint.config(
  // Fixtures that are broken on purpose (an app with a syntax error) are not linted.
  { ignores: ['node_modules/', 'test-results/', 'loadtest/results/', 'test/fixtures/apps/syntax-error*'] },
  ...tseslint.configs.recommended,
  {
    files: ['runtime/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/server/**', '../server/*', '../../server/*'], message: 'runtime/ runs in workers and never imports server/.' },
        { group: ['fastify', 'pino'], message: 'Only server/ imports Fastify and pino.' },
        { group: ['pyodide', 'pyodide-312'], message: 'Only the Python interpreter modules import Pyodide.' },
      ] }],
    },
  },
  {
    // The Python interpreter kind is where Pyodide belongs (it loads the package by a
    // name from a variable, which this rule cannot see, so the rule guards the rest).
    files: ['runtime/interpreters/python*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/server/**', '../server/*', '../../server/*'], message: 'runtime/ runs in workers and never imports server/.' },
      ] }],
    },
  },
  {
    files: ['runtime/protocol.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['*'], message: 'protocol.ts is the contract and imports nothing.' }] }] },
  },
  {
    // `**/runtime/**`, not `../runtime/*`: a file in a subfolder (server/admin, server/pool)
    // reaches runtime/ through `../../runtime/`, and a glob's `*` stops at a slash.
    files: ['server/**/*.ts'],
    ignores: ['server/pool/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        RUNTIME_ONLY_PROTOCOL,
        { group: ['**/pool/*', '!**/pool/application-group.ts'], message: 'Outside server/pool/, import only its front, server/pool/application-group.ts.' },
      ] }],
    },
  },
  {
    files: ['server/pool/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [RUNTIME_ONLY_PROTOCOL] }] },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
);
