import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createTempDir } from './helpers';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');

test('10,000 flows over real files succeed under ulimit -n 256', { timeout: 120_000 }, async (t) => {
	const dir = await createTempDir(t);
	const script = path.join(__dirname, 'fixtures/many-files.ts');
	const { stdout } = await run('sh', ['-c', `ulimit -n 256 && exec "${process.execPath}" --import tsx "${script}" "${dir}/files" 10000`], { cwd: root });
	const result = JSON.parse(stdout) as { bytes: number; correct: boolean; mostDescriptors: number };
	assert.equal(result.correct, true);
	assert.ok(result.mostDescriptors < 256, `at most ${result.mostDescriptors} descriptors were open`);
});

test('100,000 writer and flow items in one run complete with bounded memory', { timeout: 120_000 }, async () => {
	const script = path.join(__dirname, 'fixtures/many-items.ts');
	const { stdout } = await run(process.execPath, ['--max-old-space-size=256', '--import', 'tsx', script, '100000'], { cwd: root });
	const result = JSON.parse(stdout) as { flows: number; correct: boolean; maxRssBytes: number };
	assert.deepEqual([result.flows, result.correct], [50_000, true]);
	assert.ok(result.maxRssBytes < 400 * 1024 ** 2, `peak RSS was ${Math.round(result.maxRssBytes / 1024 ** 2)} MB`);
});
