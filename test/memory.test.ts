import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createTempDir, listDir } from './helpers';

const run = promisify(execFile);

test('Concatenating 1 GiB through a stream step needs a bounded amount of memory', { timeout: 120_000 }, async (t) => {
	const dir = await createTempDir(t);
	const script = path.join(__dirname, 'fixtures/large-run.ts');
	const { stdout } = await run(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', script, '8', '128', dir], { cwd: path.resolve(__dirname, '..') });
	const result = JSON.parse(stdout) as { summary: { bytes: number }; actual: string; expected: string; maxRssBytes: number };
	assert.equal(result.summary.bytes, 1024 ** 3);
	assert.equal(result.actual, result.expected);
	// Node and tsx alone take about 60 MB; holding the output would take over 1,000.
	assert.ok(result.maxRssBytes < 300 * 1024 ** 2, `peak RSS was ${Math.round(result.maxRssBytes / 1024 ** 2)} MB`);
	assert.deepEqual(await listDir(dir), [], 'temp files are removed');
});
