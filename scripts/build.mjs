// Builds dist/: one CommonJS bundle (a single file loads in about a third of the time 36
// modules take, and p-limit, an ES module, no longer needs require(esm) at start-up), an ES
// module wrapper over that same bundle, so `import` and `require` share one copy of every
// class (no dual-package hazard), and the type declarations from tsc.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { buildSync } from 'esbuild';

const require = createRequire(import.meta.url);
const dist = new URL('../dist/', import.meta.url);
const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', new URL('../tsconfig.build.json', import.meta.url).pathname], { stdio: 'inherit' });
// Dependencies stay external; what lib/ imports from devDependencies (p-limit) is bundled.
const { metafile } = buildSync({
	absWorkingDir: new URL('..', import.meta.url).pathname,
	entryPoints: ['lib/index.ts'],
	outfile: new URL('index.js', dist).pathname,
	bundle: true,
	platform: 'node',
	format: 'cjs',
	target: `node${packageJson.engines.node.replace(/^>=/, '')}`,
	external: Object.keys(packageJson.dependencies),
	logLevel: 'warning',
	metafile: true,
});

// Every package bundled into index.js ships its license beside it.
const bundled = new Set(Object.keys(metafile.inputs).filter((input) => input.startsWith('node_modules/')).map((input) => {
	const parts = input.split('/');
	return parts.slice(1, parts[1].startsWith('@') ? 3 : 2).join('/');
}));
const notices = [...bundled].sort().map((name) => {
	const folder = new URL(`../node_modules/${name}/`, import.meta.url);
	const license = readdirSync(folder).find((file) => /^licen[cs]e/i.test(file));
	if (!license) {
		throw new Error(`${name} is bundled into dist/index.js but has no license file`);
	}

	return `${name} (bundled in index.js)\n\n${readFileSync(new URL(license, folder), 'utf8').trim()}\n`;
});
writeFileSync(new URL('THIRD-PARTY-LICENSES.txt', dist), notices.join('\n---\n\n'));

const names = Object.keys(require('../dist/index.js')).filter((name) => name !== '__esModule' && name !== 'default');
const wrapper = [
	"import flowcat from './index.js';",
	'',
	`export const { ${names.join(', ')} } = flowcat;`,
	'export default flowcat;',
	'',
].join('\n');
writeFileSync(new URL('index.mjs', dist), wrapper);
writeFileSync(new URL('index.d.mts', dist), "export * from './index.js';\nexport * as default from './index.js';\n");
console.log(`built dist/ (${names.length} exports: ${names.join(', ')})`);
