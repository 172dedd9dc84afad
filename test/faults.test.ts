import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { concat, concatToFile, Flow, type Item, type Writer } from '../lib/index';
import { createCollector, createTempDir, delay, fixture, listDir, openFileDescriptors, storedIds } from './helpers';

const oldTime = new Date('2024-01-01T00:00:00Z');

// The live child processes of this process, from /proc (zombies excluded), but for tsx's
// esbuild service, which lives as long as the test process.
function childProcesses(): number[] {
	const children: number[] = [];
	for (const name of readdirSync('/proc')) {
		if (!/^\d+$/.test(name)) {
			continue;
		}

		try {
			const fields = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ');
			const isEsbuild = readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('esbuild');
			if (Number(fields[1]) === process.pid && fields[0] !== 'Z' && !isEsbuild) {
				children.push(Number(name));
			}
		} catch {
			// The process ended while we looked.
		}
	}

	return children;
}

interface Fault {
	title: string;
	/** The failing flow, given a folder to put files in. */
	flow: (dir: string) => Promise<Flow> | Flow;
	message: RegExp;
	/** The error is a TypeError with no cause (a step's bad return value). */
	typeError?: boolean;
}

const upper = () => new Transform({
	transform(chunk: Buffer, _encoding, callback) {
		callback(null, chunk.toString().toUpperCase());
	},
});

async function inputFile(dir: string, name = 'input.txt', contents = 'some input\n'): Promise<string> {
	const filePath = path.join(dir, name);
	await writeFile(filePath, contents);
	await utimes(filePath, oldTime, oldTime);
	return filePath;
}

const faults: Fault[] = [
	{ title: 'a sync step that throws', flow: async (dir) => new Flow([upper, function parse(_text: string) {
		throw new SyntaxError('Unexpected token');
	}]).inputFile(await inputFile(dir)), message: /^Step "parse" \(2 of 2, sync function\) failed for .*input\.txt: Unexpected token$/ },
	{ title: 'a promise step that rejects', flow: async (dir) => new Flow([async (_text: string) => {
		await delay(5);
		throw new Error('compiler crashed');
	}]).inputFile(await inputFile(dir)), message: /^Step 1 of 1 \(promise function\) failed for .*input\.txt: compiler crashed$/ },
	{ title: 'a callback step that calls back with an error', flow: async (dir) => new Flow([(_text: string, done: (error: Error) => void) => {
		setTimeout(() => done(new Error('callback failed')), 5);
	}]).inputFile(await inputFile(dir)), message: /^Step 1 of 1 \(callback function\) failed for .*input\.txt: callback failed$/ },
	{ title: 'a step that returns a number', flow: async (dir) => new Flow([(text: string) => text.length as unknown as string]).inputFile(await inputFile(dir)), message: /^Step 1 of 1 \(sync function\) failed for .*input\.txt: returned 11 \(number\); expected a string or a Buffer$/, typeError: true },
	{ title: 'a Transform that errors mid-stream', flow: () => {
		let chunks = 0;
		return new Flow([() => new Transform({
			highWaterMark: 16,
			transform(chunk, _encoding, callback) {
				chunks += 1;
				callback(chunks === 3 ? new Error('corrupt chunk') : null, chunk);
			},
		})], { name: 'streamed' }).input(Readable.from(Array.from({ length: 20 }, () => Buffer.alloc(10_000, 'x'))));
	}, message: /^Step 1 of 1 \(stream\) failed for streamed: corrupt chunk$/ },
	{ title: 'a child process that exits non-zero', flow: async (dir) => new Flow([() => spawn(process.execPath, [fixture('fail.js'), '4'])]).inputFile(await inputFile(dir)), message: /^Step 1 of 1 \(child process\) failed for .*input\.txt: Command failed with exit code 4: .*fail\.js 4\nline one of the complaint\nfixture failed on purpose$/ },
	{ title: 'a child process killed by a signal', flow: async (dir) => new Flow([() => spawn('sh', ['-c', 'kill -9 $$'])]).inputFile(await inputFile(dir)), message: /^Step 1 of 1 \(child process\) failed for .*input\.txt: Command was killed with SIGKILL: sh -c kill -9 \$\$$/ },
	{ title: 'a command that does not exist', flow: async (dir) => new Flow([() => spawn('flowcat-missing-command')]).inputFile(await inputFile(dir)), message: /^Step 1 of 1 \(child process\) failed for .*input\.txt: spawn flowcat-missing-command ENOENT$/ },
	{ title: 'a child that closes stdin early and fails', flow: async (dir) => new Flow([() => spawn('sh', ['-c', 'exec 0<&-; sleep 0.05; echo closed >&2; exit 3'])]).inputFile(await inputFile(dir, 'big.txt', 'y'.repeat(2_000_000))), message: /^Step 1 of 1 \(child process\) failed for .*big\.txt: Command failed with exit code 3: .*\nclosed$/ },
	{ title: 'a missing input file', flow: (dir) => new Flow([upper]).inputFile(path.join(dir, 'missing.txt')), message: /^Could not read the input of .*missing\.txt: ENOENT: no such file or directory/ },
	{ title: 'an input that is a directory', flow: async (dir) => {
		await mkdir(path.join(dir, 'folder.js'));
		return new Flow([(text: string) => text]).inputFile(path.join(dir, 'folder.js'));
	}, message: /^Could not read the input of .*folder\.js: EISDIR: illegal operation on a directory/ },
	{ title: 'an input file deleted between queuing and running', flow: async (dir) => {
		const filePath = await inputFile(dir, 'deleted.txt');
		const flow = new Flow([upper]).inputFile(filePath);
		await rm(filePath);
		return flow;
	}, message: /^Could not read the input of .*deleted\.txt: ENOENT/ },
];

// Runs `items` around the failing flow, with and without a cache, and checks that nothing leaked.
async function checkFault(t: TestContext, fault: Fault, cached: boolean): Promise<void> {
	const dir = await createTempDir(t);
	const tempDir = path.join(dir, 'tmp');
	const cacheDir = path.join(dir, 'cache');
	await mkdir(tempDir);
	const pidFile = path.join(dir, 'pid');
	const good = [
		new Flow([upper]).inputFile(await inputFile(dir, 'good.txt', 'good\n')),
		new Flow([() => spawn(process.execPath, [fixture('forever.js'), pidFile])]).input('slow'),
	];
	const failing = await fault.flow(dir);
	const output = createCollector();
	const run = concat(output, [good[0], failing, good[1]], { tempDir, maxMemoryBytes: 0, cache: cached ? { dir: cacheDir } : undefined });
	await assert.rejects(run, (error: Error) => {
		assert.match(error.message, fault.message);
		if (fault.typeError) {
			assert.ok(error instanceof TypeError);
		} else {
			assert.ok(error.cause instanceof Error, 'the original error is kept as cause');
		}

		return true;
	});
	assert.equal(output.writes, 0, 'the output got nothing');
	assert.deepEqual(await listDir(tempDir), [], 'no temp file is left');
	assert.deepEqual(childProcesses(), [], 'no child process is left');
	if (cached) {
		const stored = storedIds(cacheDir).length;
		assert.ok(stored <= 1, `only the good file's result may be stored, found ${stored}`);
		assert.deepEqual(await readdir(path.join(cacheDir, 'tmp')).catch(() => []), []);
	}
}

for (const fault of faults) {
	for (const cached of [false, true]) {
		test(`Fault: ${fault.title}${cached ? ' (cached)' : ''} fails cleanly`, { timeout: 20_000 }, async (t) => {
			await checkFault(t, fault, cached);
		});
	}
}

test('Fault: an unreadable input file (mode 000) fails cleanly', { skip: process.getuid?.() === 0 ? 'root reads any file' : false }, async (t) => {
	const dir = await createTempDir(t);
	const filePath = await inputFile(dir, 'secret.txt');
	await chmod(filePath, 0);
	await assert.rejects(concat(createCollector(), [new Flow([upper]).inputFile(filePath)]), /EACCES/);
});

test('A child that stops reading early but exits 0 succeeds with what it wrote, as in a shell', async (t) => {
	const dir = await createTempDir(t);
	const flow = new Flow([() => spawn('head', ['-c', '5'])]).inputFile(await inputFile(dir, 'big.txt', 'abcdefgh'.repeat(500_000)));
	assert.equal((await flow.run()).toString(), 'abcde');
});

test('A callback step that calls back twice gives one output', async () => {
	const output = createCollector();
	await concat(output, [new Flow([(text: string, done: (error: null, output: string) => void) => {
		done(null, `${text}!`);
		setTimeout(() => done(null, 'second'), 1);
	}]).input('once'), (out) => {
		out.write('|');
	}]);
	await delay(10);
	assert.equal(output.text(), 'once!|');
});

const writerFaults: Array<[string, Writer, RegExp]> = [
	['throws', function header() {
		throw new Error('header broke');
	}, /^Writer "header" \(item 2\) failed: header broke$/],
	['passes an error to done', (_out, done) => {
		setTimeout(() => done(new Error('done with error')), 5);
	}, /^Writer \(item 2\) failed: done with error$/],
	['rejects', async () => {
		throw new Error('async writer broke');
	}, /^Writer \(item 2\) failed: async writer broke$/],
];

for (const [title, writer, message] of writerFaults) {
	test(`Fault: a writer that ${title} stops the output there`, async (t) => {
		const dir = await createTempDir(t);
		const output = createCollector();
		await assert.rejects(concat(output, [new Flow([]).input('before'), writer, new Flow([upper]).input('after')], { tempDir: dir, maxMemoryBytes: 0 }), (error: Error) => {
			assert.match(error.message, message);
			assert.ok(error.cause instanceof Error);
			return true;
		});
		assert.equal(output.text(), 'before');
		assert.deepEqual(await listDir(dir), []);
	});
}

test('Fault: an output that fails after N bytes (a full disk) rejects, stops, and cleans up', async (t) => {
	const dir = await createTempDir(t);
	let written = 0;
	const disk = new Writable({
		write(chunk: Buffer, _encoding, callback) {
			written += chunk.length;
			callback(written > 100_000 ? Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }) : null);
		},
	});
	const flows = Array.from({ length: 20 }, (_, index) => new Flow([upper]).input(String(index % 10).repeat(20_000)));
	await assert.rejects(concat(disk, flows, { tempDir: dir, maxMemoryBytes: 0 }), (error: Error & { code: string }) => {
		assert.equal(error.code, 'FLOWCAT_OUTPUT_FAILED');
		assert.equal((error.cause as Error & { code: string }).code, 'ENOSPC');
		return true;
	});
	assert.ok(written < 200_000, 'writing stopped at the failure');
	assert.deepEqual(await listDir(dir), []);
});

for (const kind of ['function', 'stream'] as const) {
	test(`Fault: past the memory budget, a temp folder that cannot be made fails the ${kind} step's flow by name`, async (t) => {
		const dir = await createTempDir(t);
		const notAFolder = path.join(dir, 'file');
		await writeFile(notAFolder, '');
		const input = await inputFile(dir, 'a.js', 'let a = 1;');
		const before = openFileDescriptors();
		await assert.rejects(concat(createCollector(), [new Flow([kind === 'function' ? (text: string) => text.toUpperCase() : upper]).inputFile(input)], { tempDir: path.join(notAFolder, 'tmp'), maxMemoryBytes: 0 }), (error: Error & { code: string; path: string }) => {
			assert.equal(error.code, 'FLOWCAT_OUTPUT_FAILED');
			assert.match(error.message, /output of .*a\.js/);
			assert.equal((error.cause as Error & { code: string }).code, 'ENOTDIR');
			return true;
		});
		assert.equal(openFileDescriptors(), before, 'no file is left open');
	});
}

for (const phase of ['flows', 'output'] as const) {
	test(`Fault: an abort while the ${phase === 'flows' ? 'flows run' : 'output is written'} leaves nothing behind`, { timeout: 20_000 }, async (t) => {
		const dir = await createTempDir(t);
		const pidFile = path.join(dir, 'pid');
		const controller = new AbortController();
		let written = 0;
		const output = new Writable({
			highWaterMark: 1024,
			write(chunk: Buffer, _encoding, callback) {
				written += chunk.length;
				if (phase === 'output' && written > 50_000) {
					controller.abort();
				}

				setTimeout(callback, 1);
			},
		});
		const items: Item[] = Array.from({ length: 10 }, () => new Flow([upper]).input('z'.repeat(30_000)));
		if (phase === 'flows') {
			items.push(new Flow([() => spawn(process.execPath, [fixture('forever.js'), pidFile])]).input('x'));
		}

		const run = concat(output, items, { tempDir: dir, maxMemoryBytes: 0, signal: controller.signal });
		if (phase === 'flows') {
			while (!(await readFile(pidFile, 'utf8').catch(() => ''))) {
				await delay(5);
			}

			controller.abort();
		}

		await assert.rejects(run, { name: 'AbortError' });
		const stopped = written;
		await delay(20);
		assert.equal(written, stopped, 'nothing more is written');
		assert.ok(written < 300_000);
		assert.deepEqual(childProcesses(), []);
		assert.deepEqual((await listDir(dir)).filter((name) => name !== 'pid'), []);
	});
}

test('concatToFile after a process killed mid-run leaves the earlier file and no temp file beside it', { timeout: 60_000 }, async (t) => {
	const dir = await createTempDir(t);
	const target = path.join(dir, 'bundle.js');
	await writeFile(target, 'previous build');
	const script = `
		const { concatToFile, Flow } = require(${JSON.stringify(path.resolve(__dirname, '../lib/index.ts'))});
		const slow = new Flow([async (text) => { await new Promise((resolve) => setTimeout(resolve, 60_000)); return text; }]).input('x');
		concatToFile(${JSON.stringify(target)}, [new Flow([]).input('y'.repeat(3_000_000)), slow], { early: true });
	`;
	const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: path.resolve(__dirname, '..') });
	while (!(await readdir(dir)).some((name) => name.endsWith('.flowcat-tmp'))) {
		await delay(10);
	}

	await delay(100);
	child.kill('SIGKILL');
	await new Promise((resolve) => child.once('close', resolve));
	assert.equal(await readFile(target, 'utf8'), 'previous build');
	assert.equal((await readdir(dir)).length, 2, 'the killed run left its temp file');

	await concatToFile(target, [new Flow([]).input('next build')]);
	assert.equal(await readFile(target, 'utf8'), 'next build');
	assert.deepEqual(await readdir(dir), ['bundle.js']);
});

test('A failed or aborted concatToFile leaves the earlier file untouched and no temp file', async (t) => {
	const dir = await createTempDir(t);
	const target = path.join(dir, 'out.css');
	await writeFile(target, 'old');
	await assert.rejects(concatToFile(target, [new Flow([]).input('new'), new Flow([() => spawn('false')]).input('x')]), /exit code 1/);
	await assert.rejects(concatToFile(target, [new Flow([]).input('new')], { signal: AbortSignal.abort() }), { name: 'AbortError' });
	assert.equal(await readFile(target, 'utf8'), 'old');
	assert.deepEqual(await readdir(dir), ['out.css']);
});
