// Builds dist/: CommonJS from tsc, plus an ES module wrapper over that same CommonJS build,
// so `import` and `require` share one copy of every class (no dual-package hazard).
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });

const names = Object.keys(require('../dist/index.js')).filter((name) => name !== '__esModule' && name !== 'default');
const wrapper = [
	"import flowcat from './index.js';",
	'',
	`export const { ${names.join(', ')} } = flowcat;`,
	'export default flowcat;',
	'',
].join('\n');
writeFileSync(new URL('../dist/index.mjs', import.meta.url), wrapper);
writeFileSync(new URL('../dist/index.d.mts', import.meta.url), "export * from './index.js';\nexport * as default from './index.js';\n");
console.log(`built dist/ (${names.length} exports: ${names.join(', ')})`);
