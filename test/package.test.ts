import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createTempDir } from './helpers';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');

const esmConsumer = `
import { Flow, Task, concat, concatToFile, runner } from 'flowcat';
import flowcat from 'flowcat';
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
const out = new PassThrough();
const chunks = [];
out.on('data', (chunk) => chunks.push(chunk));
const summary = await concat(out, [new Flow([(text) => text.toUpperCase()]).input('esm'), () => {}, new Task([]).input('!')]);
const required = createRequire(import.meta.url)('flowcat');
console.log(JSON.stringify({ text: Buffer.concat(chunks).toString(), summary, sameClass: required.Flow === Flow, runner: runner.concat === concat, file: typeof concatToFile, default: flowcat.Flow === Flow }));
`;
const cjsConsumer = `
const { Flow, concat, runner, Task } = require('flowcat');
const { PassThrough } = require('node:stream');
const out = new PassThrough();
const chunks = [];
out.on('data', (chunk) => chunks.push(chunk));
runner.concat(out, [new Flow([(text) => text + ' ok']).input('cjs'), new Task([]).input('.')], { cache: { dir: 'cache' } }).then((summary) => {
	console.log(JSON.stringify({ text: Buffer.concat(chunks).toString(), summary, same: concat === runner.concat }));
});
`;
const typedUse = `
import type { ConcatOptions, Summary, Writer } from 'flowcat';
const options: ConcatOptions = { limit: 4, end: false };
const header: Writer = (out) => { out.write('/* header */'); };
const flow = new Flow([(text: string) => text, async (text: string) => Buffer.from(text)], { name: 'typed' }).input('x');
const summary: Promise<Summary> = concat(process.stdout, [header, flow], options);
void summary;
// @ts-expect-error: a limit is a number
const wrong: ConcatOptions = { limit: 'four' };
void wrong;
`;

test('The packed tarball installs in another project and works from ESM and CommonJS, with types', { timeout: 240_000 }, async (t) => {
	const dir = await createTempDir(t);
	await run('npm', ['pack', '--pack-destination', dir], { cwd: root });
	const [tarball] = (await readdir(dir)).filter((name) => name.endsWith('.tgz'));
	const project = path.join(dir, 'consumer');
	await run('mkdir', ['-p', project]);
	await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
	await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(dir, tarball)], { cwd: project });

	await writeFile(path.join(project, 'esm.mjs'), esmConsumer);
	const esm = JSON.parse((await run(process.execPath, ['esm.mjs'], { cwd: project })).stdout);
	assert.deepEqual(esm, { text: 'ESM!', summary: { flows: 2, hits: 0, misses: 0, bytes: 4 }, sameClass: true, runner: true, file: 'function', default: true });

	// Twice: the second run is served by the cache, whose keys include the package's version.
	await writeFile(path.join(project, 'cjs.cjs'), cjsConsumer);
	const cjs = JSON.parse((await run(process.execPath, ['cjs.cjs'], { cwd: project })).stdout);
	assert.deepEqual(cjs, { text: 'cjs ok.', summary: { flows: 2, hits: 0, misses: 2, bytes: 7 }, same: true });
	const again = JSON.parse((await run(process.execPath, ['cjs.cjs'], { cwd: project })).stdout);
	assert.deepEqual(again, { text: 'cjs ok.', summary: { flows: 2, hits: 2, misses: 0, bytes: 7 }, same: true });

	await writeFile(path.join(project, 'typed.mts'), `import { Flow, concat } from 'flowcat';\n${typedUse}`);
	await writeFile(path.join(project, 'typed.cts'), `import flowcat = require('flowcat');\nconst { Flow, concat } = flowcat;\n${typedUse.replace("import type { ConcatOptions, Summary, Writer } from 'flowcat';", "type ConcatOptions = flowcat.ConcatOptions; type Summary = flowcat.Summary; type Writer = flowcat.Writer;")}`);
	await writeFile(path.join(project, 'tsconfig.json'), JSON.stringify({
		compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'] },
		files: ['typed.mts', 'typed.cts'],
	}));
	await run(process.execPath, [tsc, '-p', project], { cwd: project }).catch((error: { stdout: string }) => {
		assert.fail(`the types did not check:\n${error.stdout}`);
	});
});
