import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderConfigurationDoc } from '../../server/configuration-doc.ts';
import { catalog } from '../../server/errors.ts';
import { renderServeHelp } from '../../server/help.ts';
import { options } from '../../server/options.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('docs generated from the option table', () => {
  it('docs/configuration.md matches the option table (run `npm run docs` to regenerate)', () => {
    expect(read('docs/configuration.md')).toBe(renderConfigurationDoc());
  });

  it('--help lists every option with its environment variable', () => {
    const help = renderServeHelp();
    for (const option of options) {
      expect(help).toContain(option.flag);
      if ('env' in option && option.env) expect(help).toContain(option.env);
    }
  });

  it('every option has a distinct flag, env var and name', () => {
    for (const key of ['flag', 'env', 'name'] as const) {
      const values = options.map((o) => (o as Record<string, unknown>)[key]).filter((v) => v !== undefined);
      expect(new Set(values).size).toBe(values.length);
    }
  });
});

describe('error catalog', () => {
  const doc = read('docs/errors.md');

  it.each(Object.entries(catalog))('%s is documented in docs/errors.md with its status', (code, entry) => {
    expect(doc).toContain(`\`${code}\``);
    if (entry.statusCode > 0) expect(doc).toMatch(new RegExp(`\`${code}\` \\| ${entry.statusCode} \\|`));
  });

  it('codes are namespaced and statuses are HTTP errors or 0 (start-up)', () => {
    for (const [code, entry] of Object.entries(catalog)) {
      expect(code).toMatch(/^INTERPOOL_ERR_[A-Z_]+$/);
      expect(entry.statusCode === 0 || (entry.statusCode >= 400 && entry.statusCode < 600)).toBe(true);
    }
  });
});
