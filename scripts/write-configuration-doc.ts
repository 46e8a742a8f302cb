// Regenerates docs/configuration.md from the option table: `npm run docs`.
import { writeFileSync } from 'node:fs';
import { renderConfigurationDoc } from '../server/configuration-doc.ts';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigurationDoc());
process.stdout.write('wrote docs/configuration.md\n');
