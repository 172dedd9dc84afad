import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');

test('examples/runner.ts writes every module, in order, through function, streams and tr', async () => {
	const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'examples/runner.ts'], { cwd: root });
	const expected = ['index.js', 'items.js', 'lib/format.js', 'lib/math.js', 'lib/settings.js'];
	assert.deepEqual([...stdout.matchAll(/^\/\/ (.*\.JS)$/gm)].map((match) => match[1]), expected.map((name) => name.toUpperCase()));
	assert.ok(stdout.startsWith('/* 5 modules */\n'));
	assert.ok(stdout.endsWith('/* end */\n'));
	assert.match(stderr, /^wrote \d+ bytes from 5 flows\n$/);
});

test('examples/vinyl.ts writes one file through vinyl-fs', async (t) => {
	const output = path.join(root, 'examples/dist/modules.txt');
	t.after(() => rm(output, { force: true }));
	await run(process.execPath, ['--import', 'tsx', 'examples/vinyl.ts'], { cwd: root });
	assert.equal(await readFile(output, 'utf8'), 'Line counts\nindex.js: 10 lines\nlib/math.js: 10 lines\nlib/format.js: 8 lines\n');
});
