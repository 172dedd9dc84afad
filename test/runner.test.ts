import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { test } from 'node:test';
import { AbortError, concat, concatToFile, Flow, FlowcatError, runner, type Writer } from '../lib/index';
import { createCollector, createTempDir, deferred, delay, fixture, isRunning, listDir, openFileDescriptors } from './helpers';

const upper = () => new Transform({
	transform(chunk: Buffer, _encoding, callback) {
		callback(null, chunk.toString().toUpperCase());
	},
});

test('Outputs stand in list order whatever order the flows finish in', async () => {
	const count = 12;
	const finished: number[] = [];
	// Flow i finishes only after flow i + 1 has: completion is exactly reversed.
	const done = Array.from({ length: count + 1 }, () => deferred());
	done[count].resolve();
	const flows = Array.from({ length: count }, (_, index) => new Flow([async (text: string) => {
		await done[index + 1].promise;
		finished.push(index);
		done[index].resolve();
		return `<${text}>`;
	}]).input(String(index)));
	const output = createCollector();
	const separator: Writer = (out) => {
		out.write(',');
	};
	const items = flows.flatMap((flow, index) => (index === 0 ? [flow] : [separator, flow]));
	const summary = await concat(output, items, { limit: count });
	assert.equal(output.text(), flows.map((_, index) => `<${index}>`).join(','));
	assert.deepEqual(finished, Array.from({ length: count }, (_, index) => count - 1 - index));
	assert.deepEqual(summary, { flows: count, hits: 0, misses: 0, bytes: output.buffer().length });
});

test('Writers of every shape run in list order: sync, promise, callback and no-argument', async () => {
	const output = createCollector();
	const calls: string[] = [];
	await concat(output, [
		(out) => {
			out.write('a');
		},
		async (out) => {
			await delay(5);
			out.write('b');
		},
		(out, done) => {
			setTimeout(() => {
				out.write('c');
				done();
			}, 5);
		},
		() => {
			calls.push('no-argument');
		},
		new Flow([]).input('d'),
	]);
	assert.equal(output.text(), 'abcd');
	assert.deepEqual(calls, ['no-argument']);
});

test('In a run every flow emits exec, then done, a flow with no steps too', async (t) => {
	const dir = await createTempDir(t);
	const filePath = path.join(dir, 'plain.txt');
	await writeFile(filePath, 'file;');
	const flows = [new Flow([]).input('bytes;'), new Flow([]).inputFile(filePath), new Flow([(text: string) => text]).input('step;')];
	const events: string[] = [];
	for (const [index, flow] of flows.entries()) {
		flow.on('exec', () => events.push(`exec ${index}`));
		flow.on('done', () => events.push(`done ${index}`));
	}

	const output = createCollector();
	await concat(output, flows);
	assert.equal(output.text(), 'bytes;file;step;');
	for (const index of [0, 1, 2]) {
		assert.ok(events.indexOf(`exec ${index}`) >= 0 && events.indexOf(`exec ${index}`) < events.indexOf(`done ${index}`), events.join(', '));
	}
});

test('At most `limit` flows run at once, and the limit is reached', async () => {
	let running = 0;
	let highest = 0;
	const step = async (text: string) => {
		running += 1;
		highest = Math.max(highest, running);
		await delay(5);
		running -= 1;
		return text;
	};
	for (const limit of [1, 3, 7]) {
		highest = 0;
		const flows = Array.from({ length: 30 }, (_, index) => new Flow([step]).input(String(index % 10)));
		await concat(createCollector(), flows, { limit });
		assert.equal(highest, limit, `limit ${limit}`);
	}
});

test('The default limit is 16', async () => {
	let running = 0;
	let highest = 0;
	const flows = Array.from({ length: 40 }, () => new Flow([async (text: string) => {
		running += 1;
		highest = Math.max(highest, running);
		await delay(10);
		running -= 1;
		return text;
	}]).input('x'));
	await concat(createCollector(), flows);
	assert.equal(highest, 16);
});

test('A failing flow writes nothing, rejects naming the file and step, and stops the others', async (t) => {
	const dir = await createTempDir(t);
	const bad = path.join(dir, 'bad.js');
	await writeFile(bad, 'bad input');
	const pidFile = path.join(dir, 'pid');
	const slow = new Flow([() => spawn(process.execPath, [fixture('forever.js'), pidFile])]).input('x');
	const failing = new Flow([async (text: string) => {
		while (!(await readFile(pidFile, 'utf8').catch(() => ''))) {
			await delay(5);
		}

		throw new Error(`cannot parse ${text.length} bytes`);
	}]).inputFile(bad);
	const output = createCollector();
	const writerCalls: string[] = [];
	await assert.rejects(concat(output, [() => {
		writerCalls.push('header');
	}, slow, failing], { tempDir: dir }), (error: FlowcatError) => {
		assert.equal(error.message, `Step 1 of 1 (promise function) failed for ${path.relative(process.cwd(), bad)}: cannot parse 9 bytes`);
		assert.equal(error.code, 'FLOWCAT_STEP_FAILED');
		return true;
	});
	assert.equal(output.writes, 0);
	assert.deepEqual(writerCalls, []);
	const pid = Number(await readFile(pidFile, 'utf8'));
	assert.equal(isRunning(pid), false, 'the sibling child process was killed before the run rejected');
	assert.deepEqual((await listDir(dir)).sort(), ['bad.js', 'pid']);
});

test('Writers into a slow output keep their order; one may end its stream, another break it', async () => {
	// An output that takes its time: a writer's writes queue up behind it.
	const chunks: string[] = [];
	const slow = new Writable({
		highWaterMark: 4,
		write(chunk: Buffer, _encoding, callback) {
			chunks.push(chunk.toString());
			setTimeout(callback, 1);
		},
	});
	const many = (out: Writable) => {
		for (let index = 0; index < 20; index += 1) {
			out.write(`${index},`);
		}
	};
	// A flow whose output is held in memory as several chunks.
	const chunked = new Flow([() => new PassThrough()]).input(Readable.from([Buffer.from('fl'), Buffer.from('ow'), Buffer.from(';')]));
	await concat(slow, [many, chunked, (out) => {
		out.end('ended;');
	}, (out) => {
		out.write('after');
	}]);
	assert.equal(chunks.join(''), `${Array.from({ length: 20 }, (_, index) => `${index},`).join('')}flow;ended;after`);
	assert.equal(slow.writableFinished, true, 'the run ends its output once, at the end');

	await assert.rejects(concat(createCollector(), [function breaks(out) {
		out.destroy(new Error('broken on purpose'));
	}]), { code: 'FLOWCAT_WRITER_FAILED', message: 'Writer "breaks" (item 1) failed: broken on purpose' });
});

test('A writer that fails stops the output there: nothing after it is written', async () => {
	const output = createCollector();
	const tail = new Flow([]).input('never');
	await assert.rejects(concat(output, [new Flow([]).input('first'), function brokenHeader(out) {
		out.write('partial');
		throw new Error('no header for you');
	}, tail]), {
		code: 'FLOWCAT_WRITER_FAILED',
		message: 'Writer "brokenHeader" (item 2) failed: no header for you',
	});
	assert.equal(output.text().includes('never'), false);
	await assert.rejects(concat(createCollector(), [(_out, done) => done(new Error('callback said no'))]), {
		message: 'Writer (item 1) failed: callback said no',
	});
});

test('The output is ended by default, left open with end: false, and stdout is never ended', async () => {
	const ended = createCollector();
	await concat(ended, [new Flow([]).input('a')]);
	assert.equal(ended.writableFinished, true);
	const open = createCollector();
	await concat(open, [new Flow([]).input('a')], { end: false });
	assert.equal(open.writableEnded, false);
	open.end();

	const child = spawn(process.execPath, ['--import', 'tsx', '-e', `
		const { concat, Flow } = require(${JSON.stringify(path.resolve(__dirname, '../lib/index.ts'))});
		concat(process.stdout, [new Flow([]).input('one ')]).then(() => concat(process.stdout, [new Flow([]).input('two')])).then(() => process.stdout.write(' still open'));
	`], { cwd: path.resolve(__dirname, '..') });
	let text = '';
	child.stdout.on('data', (chunk: Buffer) => {
		text += chunk.toString();
	});
	const [code] = await once(child, 'close');
	assert.equal(code, 0);
	assert.equal(text, 'one two still open');
});

test('An output that errors rejects the run and never crashes the process', async () => {
	let written = 0;
	const failing = new Writable({
		highWaterMark: 4,
		write(chunk: Buffer, _encoding, callback) {
			written += chunk.length;
			callback(written > 10 ? new Error('ENOSPC: no space left on device') : null);
		},
	});
	const flows = Array.from({ length: 5 }, () => new Flow([]).input('0123456789'));
	await assert.rejects(concat(failing, flows), {
		code: 'FLOWCAT_OUTPUT_FAILED',
		message: 'The output stream failed: ENOSPC: no space left on device',
	});
});

test('An output that errors while flows run stops the run', async () => {
	const output = new PassThrough();
	const flow = new Flow([async (text: string) => {
		await delay(50);
		return text;
	}]).input('x');
	const run = concat(output, [flow]);
	setTimeout(() => output.destroy(new Error('socket hang up')), 5);
	await assert.rejects(run, { message: 'The output stream failed: socket hang up' });
});

test('Abort while flows run kills children, removes temp files and rejects with an AbortError', async (t) => {
	const dir = await createTempDir(t);
	const pidFile = path.join(dir, 'pid');
	const controller = new AbortController();
	const output = createCollector();
	const big = new Flow([() => upper()]).input('x'.repeat(4096));
	const run = concat(output, [big, new Flow([() => spawn(process.execPath, [fixture('forever.js'), pidFile])]).input('x')], {
		signal: controller.signal,
		tempDir: dir,
		maxMemoryBytes: 0,
	});
	while (!(await readFile(pidFile, 'utf8').catch(() => ''))) {
		await delay(5);
	}

	controller.abort();
	await assert.rejects(run, (error: Error) => {
		assert.ok(error instanceof AbortError);
		assert.equal(error.name, 'AbortError');
		return true;
	});
	assert.equal(isRunning(Number(await readFile(pidFile, 'utf8'))), false);
	assert.equal(output.writes, 0);
	assert.deepEqual(await listDir(dir), ['pid']);
});

test('Abort while the output is written stops writing and rejects', async () => {
	const controller = new AbortController();
	const output = new PassThrough({ highWaterMark: 1 });
	const flows = Array.from({ length: 50 }, () => new Flow([]).input('y'.repeat(1000)));
	const run = concat(output, flows, { signal: controller.signal });
	await once(output, 'readable');
	controller.abort(new Error('user pressed ctrl-c'));
	await assert.rejects(run, (error: Error) => {
		assert.ok(error instanceof AbortError);
		assert.equal((error.cause as Error).message, 'user pressed ctrl-c');
		return true;
	});
	assert.ok(output.readableLength < 50_000);
});

test('An already aborted signal rejects before any flow runs', async () => {
	let ran = false;
	const flow = new Flow([(text: string) => {
		ran = true;
		return text;
	}]).input('x');
	await assert.rejects(concat(createCollector(), [flow], { signal: AbortSignal.abort() }), { name: 'AbortError' });
	assert.equal(ran, false);
});

test('Past the memory budget outputs go to temp files, which are removed after the run', async (t) => {
	const dir = await createTempDir(t);
	let sawTempFiles = 0;
	const flows = Array.from({ length: 6 }, (_, index) => new Flow([upper, async (text: string) => {
		sawTempFiles = Math.max(sawTempFiles, (await listDir(dir)).length);
		return text;
	}]).input(String(index).repeat(100_000)));
	const output = createCollector();
	await concat(output, flows, { tempDir: dir, maxMemoryBytes: 150_000, limit: 1 });
	assert.equal(output.text(), flows.map((_, index) => String(index).repeat(100_000)).join(''));
	assert.ok(sawTempFiles > 0, 'some outputs were spooled to disk');
	assert.deepEqual(await listDir(dir), []);
});

test('Open file descriptors stay proportional to the limit, not to the number of flows', async (t) => {
	const dir = await createTempDir(t);
	const files = await Promise.all(Array.from({ length: 400 }, async (_, index) => {
		const filePath = path.join(dir, `f${index}.txt`);
		await writeFile(filePath, `file ${index}\n`);
		return filePath;
	}));
	const before = openFileDescriptors();
	let highest = 0;
	const probe = () => new Transform({
		transform(chunk, _encoding, callback) {
			highest = Math.max(highest, openFileDescriptors() - before);
			callback(null, chunk);
		},
	});
	const output = createCollector();
	await concat(output, files.map((file) => new Flow([probe, () => spawn('cat')]).inputFile(file)), { limit: 4, maxMemoryBytes: 0, tempDir: dir });
	assert.equal(output.text(), files.map((_, index) => `file ${index}\n`).join(''));
	// Each running flow holds its input, a temp file and a child's three pipes.
	assert.ok(highest <= 4 * 6, `at most ${highest} descriptors were open at once`);
});

test('Bad arguments throw at once with TypeError or RangeError', async () => {
	await assert.rejects(concat('nope' as never, []), { name: 'TypeError', message: 'Expected `output` to be a writable stream, instead got nope (string)' });
	await assert.rejects(concat(createCollector(), 'x' as never), { name: 'TypeError' });
	await assert.rejects(concat(createCollector(), [42 as never]), { name: 'TypeError', message: 'Expected `items[0]` to be a Flow or a writer function, instead got 42 (number)' });
	for (const limit of [0, -1, Number.NaN]) {
		await assert.rejects(concat(createCollector(), [], { limit }), { name: 'RangeError', code: 'FLOWCAT_INVALID_OPTION' });
	}

	await assert.rejects(concat(createCollector(), [], { limit: '4' as never }), { name: 'TypeError', message: 'Expected `limit` to be a number from 1 up, instead got 4 (string)' });
});

test('runner.concat is the same function', () => {
	assert.equal(runner.concat, concat);
});

test('concatToFile writes the whole output, or leaves the earlier file untouched', async (t) => {
	const dir = await createTempDir(t);
	const target = path.join(dir, 'bundle.js');
	await concatToFile(target, [new Flow([]).input('one'), (out) => {
		out.write('+');
	}, new Flow([upper]).input('two')]);
	assert.equal(await readFile(target, 'utf8'), 'one+TWO');
	await assert.rejects(concatToFile(target, [new Flow([]).input('new'), new Flow([() => {
		throw new Error('broken');
	}]).input('x')]), /broken/);
	assert.equal(await readFile(target, 'utf8'), 'one+TWO');
	await assert.rejects(concatToFile(target, [new Flow([])], { signal: AbortSignal.abort() }), { name: 'AbortError' });
	assert.deepEqual(await listDir(dir), ['bundle.js']);
});

test('Large files go to a file output byte for byte, in several reads each', { timeout: 60_000 }, async (t) => {
	const dir = await createTempDir(t);
	// Sizes around the 4 MiB read: whole reads, a short last read, one byte over; random bytes,
	// so a read buffer reused before its bytes were written would show.
	const sizes = [9 * 1024 ** 2, 4 * 1024 ** 2 + 1, 3, 6 * 1024 ** 2 - 7, 13 * 1024 ** 2];
	const inputs = await Promise.all(sizes.map(async (size, index) => {
		const filePath = path.join(dir, `in-${index}.bin`);
		const bytes = randomBytes(size);
		await writeFile(filePath, bytes);
		return { filePath, bytes };
	}));
	const target = path.join(dir, 'out.bin');
	const items = inputs.flatMap(({ filePath }, index) => [(out: Writable) => {
		out.write(`<${index}>`);
	}, new Flow([]).inputFile(filePath)]);
	const summary = await concatToFile(target, items);
	const expected = Buffer.concat(inputs.flatMap(({ bytes }, index) => [Buffer.from(`<${index}>`), bytes]));
	assert.equal(summary.bytes, expected.length);
	assert.ok((await readFile(target)).equals(expected));
});

test('With early: true each item is written as soon as it and those before it are done', async () => {
	for (const early of [false, true]) {
		const gate = deferred();
		const output = createCollector();
		const slow = new Flow([async (text: string) => {
			await gate.promise;
			return text;
		}]).input('B');
		const run = concat(output, [(out) => {
			out.write('<');
		}, new Flow([]).input('A'), slow, (out) => {
			out.write('>');
		}], { early });
		await delay(30);
		assert.equal(output.text(), early ? '<A' : '', `early: ${early}`);
		gate.resolve();
		await run;
		assert.equal(output.text(), '<AB>');
	}
});

test('With early: true a later failure leaves the written prefix and rejects', async () => {
	const output = createCollector();
	const failing = new Flow([async (_text: string) => {
		await delay(20);
		throw new Error('late failure');
	}]).input('x');
	await assert.rejects(concat(output, [new Flow([]).input('first'), failing, new Flow([]).input('never')], { early: true }), /late failure/);
	assert.equal(output.text(), 'first');
});
