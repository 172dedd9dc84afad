import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Cache, concat, Flow, type CacheMethod } from '../lib/index';
import { captureWarnings, createCollector, createTempDir, delay, listDir, storedIds } from './helpers';

const execFileAsync = promisify(execFile);
const root = path.resolve(__dirname, '..');
const oldTime = new Date('2024-01-01T00:00:00Z');

// A source folder of `count` files with an old mtime (outside the racy window).
async function createSources(t: TestContext, count: number): Promise<{ dir: string; files: string[]; cacheDir: string }> {
	const dir = await createTempDir(t);
	await mkdir(path.join(dir, 'src'));
	const files = await Promise.all(Array.from({ length: count }, async (_, index) => {
		const filePath = path.join(dir, 'src', `file${index}.txt`);
		await writeFile(filePath, `contents of file ${index}\n`);
		await utimes(filePath, oldTime, oldTime);
		return filePath;
	}));
	return { dir, files, cacheDir: path.join(dir, 'cache') };
}

// A build whose step counts how often it ran, per file name.
function createBuild(files: string[], options: { method?: CacheMethod; key?: string } = {}) {
	const ran: string[] = [];
	const build = async (cacheDir: string) => {
		const flows = files.map((file) => new Flow([(text: string) => {
			ran.push(path.basename(file));
			return text.toUpperCase();
		}], { key: options.key }).inputFile(file));
		const output = createCollector();
		const events: string[] = [];
		for (const flow of flows) {
			flow.on('hit', (info: { source: string }) => events.push(`hit:${info.source}`));
			flow.on('miss', () => events.push('miss'));
		}

		const summary = await concat(output, flows, { cache: { dir: cacheDir, method: options.method } });
		return { summary, text: output.text(), events };
	};

	return { ran, build };
}

async function entryFiles(cacheDir: string): Promise<string[]> {
	const names = await readdir(path.join(cacheDir, 'entries'), { recursive: true }).catch(() => []);
	const files: string[] = [];
	for (const name of names) {
		const filePath = path.join(cacheDir, 'entries', name);
		if ((await stat(filePath)).isFile()) {
			files.push(filePath);
		}
	}

	return files;
}

// A cache's pack files of one kind ('.pack' or '.idx'), oldest first.
async function packFiles(cacheDir: string, extension: '.pack' | '.idx'): Promise<string[]> {
	const names = await readdir(path.join(cacheDir, 'packs')).catch(() => []);
	return names.filter((name) => name.endsWith(extension)).sort().map((name) => path.join(cacheDir, 'packs', name));
}

test('A second run with unchanged files runs no step, emits hits and gives the same bytes', async (t) => {
	const { files, cacheDir } = await createSources(t, 5);
	const { ran, build } = createBuild(files);
	const first = await build(cacheDir);
	assert.deepEqual(first.summary, { flows: 5, hits: 0, misses: 5, bytes: first.text.length });
	assert.deepEqual(first.events, Array(5).fill('miss'));
	assert.equal(ran.length, 5);

	const second = await build(cacheDir);
	assert.equal(ran.length, 5, 'no step ran on the second run');
	assert.equal(second.text, first.text);
	assert.deepEqual(second.summary, { flows: 5, hits: 5, misses: 0, bytes: first.text.length });
	assert.deepEqual(second.events, Array(5).fill('hit:local'));
});

test('A changed file misses alone: by mtime with stat, by contents with a digest method', async (t) => {
	const { files, cacheDir } = await createSources(t, 4);
	const { ran, build } = createBuild(files);
	await build(cacheDir);
	const newTime = new Date('2024-06-01T00:00:00Z');
	await utimes(files[2], newTime, newTime);
	const result = await build(cacheDir);
	assert.deepEqual(ran.slice(4), ['file2.txt']);
	assert.deepEqual([result.summary.hits, result.summary.misses], [3, 1]);

	for (const method of ['md5', 'sha1', 'sha256', 'sha512'] as const) {
		const digest = createBuild(files, { method });
		const digestCache = path.join(cacheDir, method);
		await digest.build(digestCache);
		// Touching a file does not change its digest...
		await utimes(files[1], oldTime, oldTime);
		// ...while new contents of the same size and mtime do.
		await writeFile(files[3], 'CONTENTS OF FILE 3\n'.toLowerCase().replace('3', '9'));
		await utimes(files[3], oldTime, oldTime);
		const rerun = await digest.build(digestCache);
		assert.deepEqual(digest.ran.slice(4), ['file3.txt'], method);
		assert.match(rerun.text, /CONTENTS OF FILE 9/);
		await writeFile(files[3], 'contents of file 3\n');
		await utimes(files[3], oldTime, oldTime);
	}
});

test('A file changed within the mtime stamp\'s accuracy is still seen as changed', async (t) => {
	const { files, cacheDir } = await createSources(t, 1);
	await writeFile(files[0], 'first version\n');
	const stamp = new Date();
	await utimes(files[0], stamp, stamp);
	const { build } = createBuild(files);
	assert.equal((await build(cacheDir)).text, 'FIRST VERSION\n');
	// Same size, same mtime: only the contents tell.
	await writeFile(files[0], 'other version\n');
	await utimes(files[0], stamp, stamp);
	assert.equal((await build(cacheDir)).text, 'OTHER VERSION\n');
});

test('A different key, or different step source, is a different result', async (t) => {
	const { files, cacheDir } = await createSources(t, 2);
	const one = createBuild(files, { key: 'terser@5 {compress:true}' });
	await one.build(cacheDir);
	const same = createBuild(files, { key: 'terser@5 {compress:true}' });
	await same.build(cacheDir);
	assert.equal(same.ran.length, 0);
	const other = createBuild(files, { key: 'terser@5 {compress:false}' });
	await other.build(cacheDir);
	assert.equal(other.ran.length, 2);

	const flowA = () => new Flow([(text: string) => `${text}A`]).inputFile(files[0]);
	const flowB = () => new Flow([(text: string) => `${text}B`]).inputFile(files[0]);
	const output = createCollector();
	await concat(output, [flowA(), flowB()], { cache: { dir: cacheDir } });
	const rerun = createCollector();
	const summary = await concat(rerun, [flowA(), flowB()], { cache: { dir: cacheDir } });
	assert.equal(rerun.text(), 'contents of file 0\nAcontents of file 0\nB');
	assert.equal(summary.hits, 2);
});

test('Inputs without a path are keyed by their contents in memory; streams are not cached', async (t) => {
	const dir = await createTempDir(t);
	let runs = 0;
	const step = (text: string) => {
		runs += 1;
		return `<${text}>`;
	};

	const cache = new Cache({ dir });
	const run = async (inputs: Array<string | Buffer | Readable>) => {
		const output = createCollector();
		const summary = await concat(output, inputs.map((input) => new Flow([step]).input(input)), { cache });
		return { summary, text: output.text() };
	};

	await run(['a', Buffer.from('b')]);
	const again = await run(['a', Buffer.from('b'), 'c']);
	assert.equal(again.text, '<a><b><c>');
	assert.deepEqual([again.summary.hits, again.summary.misses, runs], [2, 1, 3]);
	await run([Readable.from(['s'])]);
	const stream = await run([Readable.from(['s'])]);
	assert.deepEqual([stream.summary.hits, stream.summary.misses, stream.text, runs], [0, 1, '<s>', 5]);
});

test('A failed flow stores nothing: the next run runs it again', async (t) => {
	const { files, cacheDir } = await createSources(t, 3);
	let failOn: string | undefined = 'file1.txt';
	let runs = 0;
	const build = () => concat(createCollector(), files.map((file) => new Flow([(text: string) => {
		runs += 1;
		if (path.basename(file) === failOn) {
			throw new Error('flaky compiler');
		}

		return text;
	}]).inputFile(file)), { cache: { dir: cacheDir }, limit: 1 });
	await assert.rejects(build(), /flaky compiler/);
	assert.equal(storedIds(cacheDir).length, 1, 'only the flow that finished before the failure is stored');
	failOn = undefined;
	runs = 0;
	const summary = await build();
	assert.deepEqual([summary.hits, summary.misses, runs], [1, 2, 2]);
	assert.deepEqual(await readdir(path.join(cacheDir, 'tmp')).catch(() => []), []);
});

// Large results have entry files of their own; small ones share a pack.
async function createLargeSources(t: TestContext, count: number): Promise<{ files: string[]; cacheDir: string }> {
	const { dir, files } = await createSources(t, count);
	for (const file of files) {
		await writeFile(file, `${'large result '.repeat(90_000)}${path.basename(file)}\n`);
		await utimes(file, oldTime, oldTime);
	}

	return { files, cacheDir: path.join(dir, 'cache') };
}

async function checkRepaired(build: ReturnType<typeof createBuild>['build'], cacheDir: string, expected: { text: string; hits: number; damaged: number }): Promise<void> {
	let second: Awaited<ReturnType<typeof build>> | undefined;
	const warnings = await captureWarnings(async () => {
		second = await build(cacheDir);
	});
	assert.equal(second!.text, expected.text);
	assert.equal(second!.summary.hits, expected.hits);
	const repaired = warnings.filter((warning) => warning.code === 'FLOWCAT_CACHE_REPAIRED');
	assert.equal(repaired.length, 1);
	assert.match(repaired[0].message, new RegExp(`^flowcat: ${expected.damaged} damaged cache entries were found in .* and rebuilt: `));
	const third = await build(cacheDir);
	assert.deepEqual([third.summary.hits, third.summary.misses, third.text], [third.events.length, 0, expected.text]);
}

test('Damaged entry files are misses, rebuilt, and reported once', async (t) => {
	const { files, cacheDir } = await createLargeSources(t, 6);
	const { ran, build } = createBuild(files);
	const first = await build(cacheDir);
	const entries = await entryFiles(cacheDir);
	assert.equal(entries.length, 6);
	// Truncated, garbage of the same size, a bit flipped, emptied, deleted, and a folder in its place.
	const [truncated, garbage, flipped, emptied, deleted, folder] = entries;
	await truncate(truncated, 5);
	await writeFile(garbage, Buffer.alloc((await stat(garbage)).size, 'x'));
	const bytes = await readFile(flipped);
	bytes[0] ^= 1;
	await writeFile(flipped, bytes);
	await writeFile(emptied, '');
	await rm(deleted);
	await rm(folder);
	await mkdir(path.join(folder, 'inside'), { recursive: true });
	await checkRepaired(build, cacheDir, { text: first.text, hits: 0, damaged: 5 });
	assert.equal(ran.length, 12);
});

test('Damaged entries in a pack are misses, rebuilt, and reported once', async (t) => {
	const { files, cacheDir } = await createSources(t, 6);
	const { ran, build } = createBuild(files);
	const first = await build(cacheDir);
	const [packFile] = await packFiles(cacheDir, '.pack');
	const bytes = await readFile(packFile);
	// Entries are the results, upper-cased, each followed by its trailer: damage three of them.
	const flip = bytes.indexOf('CONTENTS OF FILE 0');
	bytes[flip] ^= 1;
	const garble = bytes.indexOf('FCAT', bytes.indexOf('CONTENTS OF FILE 1')) - 8;
	bytes.fill('x', garble, garble + 8);
	await writeFile(packFile, bytes.subarray(0, bytes.length - 3));
	await checkRepaired(build, cacheDir, { text: first.text, hits: 3, damaged: 3 });
	assert.equal(ran.length, 9);
});

test('A garbled pack index is a miss for the entries it no longer names, never a crash', async (t) => {
	const { files, cacheDir } = await createSources(t, 6);
	const { ran, build } = createBuild(files);
	const first = await build(cacheDir);
	const [indexFile] = await packFiles(cacheDir, '.idx');
	const bytes = await readFile(indexFile);
	// The third of six 48-byte records: it and the ones after are no longer read.
	bytes.fill(0xff, 2 * 48 + 10, 2 * 48 + 20);
	await writeFile(indexFile, bytes);
	const second = await build(cacheDir);
	assert.deepEqual([second.text, second.summary.hits, ran.length], [first.text, 2, 10]);
	const third = await build(cacheDir);
	assert.deepEqual([third.text, third.summary.hits], [first.text, 6]);
});

test('A file where a cache folder goes, or a cache dir that is a file, never fails the build', async (t) => {
	const { dir, files, cacheDir } = await createSources(t, 3);
	const { build } = createBuild(files);
	const first = await build(cacheDir);
	const packs = path.join(cacheDir, 'packs');
	await rm(packs, { recursive: true });
	await writeFile(packs, 'not a folder');
	assert.equal((await build(cacheDir)).text, first.text);
	assert.equal((await build(cacheDir)).summary.hits, 3);

	const large = await createLargeSources(t, 2);
	const largeBuild = createBuild(large.files);
	const largeFirst = await largeBuild.build(large.cacheDir);
	const shard = path.dirname((await entryFiles(large.cacheDir))[0]);
	await rm(shard, { recursive: true });
	await writeFile(shard, 'not a folder');
	assert.equal((await largeBuild.build(large.cacheDir)).text, largeFirst.text);
	assert.equal((await largeBuild.build(large.cacheDir)).summary.hits, 2);

	const fileInTheWay = path.join(dir, 'cache-file');
	await writeFile(fileInTheWay, 'user data');
	let result: Awaited<ReturnType<typeof build>> | undefined;
	const warnings = await captureWarnings(async () => {
		result = await build(fileInTheWay);
	});
	assert.equal(result!.text, first.text);
	assert.equal(await readFile(fileInTheWay, 'utf8'), 'user data', 'a file that is not ours is never removed');
	assert.match(warnings.find((warning) => warning.code === 'FLOWCAT_CACHE_UNWRITABLE')!.message, /could not write to the cache in .*cache-file/);
});

test('Entries live only under dir, named by digests, whatever the input paths', async (t) => {
	const { dir, cacheDir } = await createSources(t, 0);
	const nested = path.join(dir, 'a', 'b');
	await mkdir(nested, { recursive: true });
	const odd = path.join(nested, '..', '..', '..', path.basename(dir), 'x ..y.txt');
	await writeFile(odd, 'odd');
	await concat(createCollector(), [new Flow([(text: string) => text]).inputFile(odd)], { cache: { dir: cacheDir } });
	const stored = await listDir(cacheDir);
	assert.deepEqual(stored.filter((name) => !/^(pruned|packs|packs\/[\da-z]{9}-\d+-[\da-f]{6}\.(pack|idx))$/.test(name)), []);
	assert.equal(stored.filter((name) => name.endsWith('.pack')).length, 1);
});

test('After clear(), the same process stores large results again', async (t) => {
	const { files, cacheDir } = await createSources(t, 2);
	// Past 1 MiB a result streams to a temp file under the cache's tmp/, which clear() removes.
	for (const file of files) {
		await writeFile(file, 'x'.repeat(2 * 1024 * 1024));
		await utimes(file, oldTime, oldTime);
	}

	const cache = new Cache({ dir: cacheDir });
	const { ran, build } = createBuild(files);
	await build(cacheDir);
	await cache.clear();
	const warnings = await captureWarnings(async () => {
		assert.equal((await build(cacheDir)).summary.misses, 2);
	});
	assert.deepEqual(warnings, []);
	assert.equal((await build(cacheDir)).summary.hits, 2);
	assert.equal(ran.length, 4);
});

test('clear() empties the cache and maxBytes prunes the least recently used entries', async (t) => {
	const { files, cacheDir } = await createSources(t, 4);
	const cache = new Cache({ dir: cacheDir });
	const { build } = createBuild(files);
	await build(cacheDir);
	assert.equal(storedIds(cacheDir).length, 4);
	await cache.clear();
	assert.deepEqual(storedIds(cacheDir), []);

	// One run per file: four packs, used on four different days.
	for (const [index, file] of files.entries()) {
		await createBuild([file]).build(cacheDir);
		const newest = (await packFiles(cacheDir, '.idx')).at(-1)!;
		const used = new Date(Date.UTC(2024, 0, index + 1));
		await utimes(newest, used, used);
	}

	const packs = await packFiles(cacheDir, '.pack');
	const sizes = await Promise.all(packs.map(async (filePath) => (await stat(filePath)).size));
	const result = await cache.prune(sizes[2] + sizes[3]);
	assert.deepEqual(result, { removedEntries: 2, removedBytes: sizes[0] + sizes[1], keptBytes: sizes[2] + sizes[3] });
	assert.equal(storedIds(cacheDir).length, 2);
	const again = createBuild(files);
	await again.build(cacheDir);
	assert.deepEqual(again.ran.sort(), ['file0.txt', 'file1.txt'], 'the two least recently used were removed');

	// A run that stores prunes to the cache's maxBytes by itself.
	const small = createBuild(files, { key: 'other' });
	await concat(createCollector(), files.map((file) => new Flow([(text: string) => text]).inputFile(file)), { cache: { dir: cacheDir, maxBytes: 0 } });
	assert.deepEqual(storedIds(cacheDir), []);
	assert.equal(small.ran.length, 0);
});

test('Many packs are merged when pruning; entries stay found and damaged ones are dropped', async (t) => {
	const { files, cacheDir } = await createSources(t, 40);
	for (const file of files) {
		await createBuild([file]).build(cacheDir);
	}

	const packs = await packFiles(cacheDir, '.pack');
	assert.equal(packs.length, 40);
	const oldest = packs[0];
	const bytes = await readFile(oldest);
	bytes[0] ^= 1;
	await writeFile(oldest, bytes);

	await new Cache({ dir: cacheDir }).prune();
	assert.equal((await packFiles(cacheDir, '.pack')).length, 9);
	assert.equal(storedIds(cacheDir).length, 39);
	const { ran, build } = createBuild(files);
	const again = await build(cacheDir);
	assert.deepEqual(ran, ['file0.txt']);
	assert.equal(again.text, files.map((_, index) => `CONTENTS OF FILE ${index}\n`).join(''));
});

test('Cache options are checked at once', () => {
	assert.throws(() => new Cache({ dir: '' }), { name: 'TypeError', message: 'Expected `dir` to be a non-empty string, instead got  (string)' });
	assert.throws(() => new Cache({ dir: 'x', method: 'crc32' as never }), { name: 'RangeError', message: "Expected `method` to be one of 'stat', 'md5', 'sha1', 'sha256', 'sha512', instead got crc32 (string)" });
	assert.throws(() => new Cache({ dir: 'x', maxBytes: -1 }), { name: 'RangeError' });
	assert.throws(() => new Cache(undefined as never), { name: 'TypeError' });
});

test('A build killed with SIGKILL mid-write leaves no entry that is served', { timeout: 60_000 }, async (t) => {
	const dir = await createTempDir(t);
	const srcDir = path.join(dir, 'src');
	await mkdir(srcDir);
	for (let index = 0; index < 8; index += 1) {
		const filePath = path.join(srcDir, `part${index}.txt`);
		// Over 1 MiB, so that results stream to temp files (smaller ones are written at commit).
		await writeFile(filePath, `${'abcdefgh'.repeat(160 * 1024)}${index}\n`);
		await utimes(filePath, oldTime, oldTime);
	}

	const cacheDir = path.join(dir, 'cache');
	const logFile = path.join(dir, 'log');
	const script = path.join(__dirname, 'fixtures/cached-run.ts');
	const child = spawn(process.execPath, ['--import', 'tsx', script, cacheDir, srcDir, path.join(dir, 'out1'), logFile, '40'], { cwd: root });
	// Kill once some results are stored and others are half written.
	while ((await entryFiles(cacheDir)).length < 2 || (await readdir(path.join(cacheDir, 'tmp')).catch(() => [])).length === 0) {
		await delay(10);
	}

	child.kill('SIGKILL');
	await once(child, 'close');
	const stored = storedIds(cacheDir).length;
	assert.ok(stored < 8, `${stored} entries were stored before the kill`);

	const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', script, cacheDir, srcDir, path.join(dir, 'out2'), logFile, '0'], { cwd: root });
	const summary = JSON.parse(stdout) as { hits: number; misses: number };
	assert.deepEqual([summary.hits, summary.misses], [stored, 8 - stored]);
	const expected = (await Promise.all((await readdir(srcDir)).sort().map((name) => readFile(path.join(srcDir, name), 'utf8')))).join('').toUpperCase();
	assert.equal(await readFile(path.join(dir, 'out2'), 'utf8'), expected);
});

test('Two processes building at once on one cache dir both succeed, and a third run is all hits', { timeout: 60_000 }, async (t) => {
	const dir = await createTempDir(t);
	const srcDir = path.join(dir, 'src');
	await mkdir(srcDir);
	for (let index = 0; index < 12; index += 1) {
		const filePath = path.join(srcDir, `part${index}.txt`);
		await writeFile(filePath, `part ${index} `.repeat(20_000));
		await utimes(filePath, oldTime, oldTime);
	}

	const cacheDir = path.join(dir, 'cache');
	const logFile = path.join(dir, 'log');
	const script = path.join(__dirname, 'fixtures/cached-run.ts');
	const build = (name: string) => execFileAsync(process.execPath, ['--import', 'tsx', script, cacheDir, srcDir, path.join(dir, name), logFile, '1'], { cwd: root });
	await Promise.all([build('a'), build('b')]);
	const expected = (await Promise.all((await readdir(srcDir)).sort().map((name) => readFile(path.join(srcDir, name), 'utf8')))).join('').toUpperCase();
	assert.equal(await readFile(path.join(dir, 'a'), 'utf8'), expected);
	assert.equal(await readFile(path.join(dir, 'b'), 'utf8'), expected);
	const stepsBefore = (await readFile(logFile, 'utf8')).split('\n').length;
	const third = JSON.parse((await build('c')).stdout) as { hits: number };
	assert.equal(third.hits, 12);
	assert.equal((await readFile(logFile, 'utf8')).split('\n').length, stepsBefore, 'the third run ran no step');
	assert.equal(await readFile(path.join(dir, 'c'), 'utf8'), expected);
});

test('A result stored while its file was fresh is found again once the file is old', async (t) => {
	const { files, cacheDir } = await createSources(t, 2);
	const now = new Date();
	for (const file of files) {
		await utimes(file, now, now);
	}

	const { ran, build } = createBuild(files);
	await build(cacheDir);
	// Later, the same files are no longer fresh: their stat key is new, their contents are not.
	for (const file of files) {
		await utimes(file, oldTime, oldTime);
	}

	const later = await build(cacheDir);
	assert.deepEqual([later.summary.hits, ran.length], [2, 2]);
	const again = await build(cacheDir);
	assert.deepEqual([again.summary.hits, ran.length], [2, 2]);
});
