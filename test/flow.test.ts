import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { test } from 'node:test';
import * as streamx from 'streamx';
import through2 from 'through2';
import File from 'vinyl';
import { Flow, FlowcatError, Task } from '../lib/index';
import { createCollector, createTempDir, delay, fixture, openFileDescriptors } from './helpers';

const upperNode = () => new Transform({
	transform(chunk: Buffer, _encoding, callback) {
		callback(null, chunk.toString().toUpperCase());
	},
});
const upperStreamx = () => new streamx.Transform({
	transform(chunk: Buffer, callback: (error: null, data: Buffer) => void) {
		callback(null, Buffer.from(chunk.toString().toUpperCase()));
	},
});
// A gulp plugin in miniature: takes vinyl files, gives them back changed.
const prefixPlugin = (prefix: string) => () => through2.obj((file: File, _encoding, callback) => {
	file.contents = Buffer.concat([Buffer.from(prefix), file.contents as Buffer]);
	callback(null, file);
});

test('A sync function step gets the whole input as a string', async () => {
	const output = await new Flow([(text: string) => `${text.length}:${text}`]).input('abc').run();
	assert.equal(output.toString(), '3:abc');
});

test('A promise function step resolves the output', async () => {
	const output = await new Flow([async (text: string) => {
		await delay(5);
		return Buffer.from(text.split('').reverse().join(''));
	}]).input('abc').run();
	assert.equal(output.toString(), 'cba');
});

test('A callback step gives its output through done, and only its first call counts', async () => {
	const warnings: string[] = [];
	const onWarning = (warning: Error) => warnings.push(warning.message);
	process.on('warning', onWarning);
	try {
		const flow = new Flow([(text: string, done: (error: unknown, output?: string) => void) => {
			done(null, `${text}1`);
			done(null, `${text}2`);
		}]);
		const output = await flow.input('x').run();
		assert.equal(output.toString(), 'x1');
		await delay(10);
		assert.equal(warnings.length, 1);
		assert.match(warnings[0], /Step 1 of 1 \(callback function\) called done more than once/);
	} finally {
		process.off('warning', onWarning);
	}
});

for (const [label, factory] of [['node:stream', upperNode], ['streamx', upperStreamx]] as const) {
	test(`A byte stream factory step (${label}) streams the bytes through`, async () => {
		const output = await new Flow([factory]).input('shout').run();
		assert.equal(output.toString(), 'SHOUT');
	});
}

test('A child process step gets the bytes on stdin and gives stdout', async () => {
	const output = await new Flow([() => spawn('tr', ['a-z', 'A-Z'])]).input('quiet').run();
	assert.equal(output.toString(), 'QUIET');
});

test('A gulp plugin step gets the flow\'s vinyl file and gives it back', async (t) => {
	const dir = await createTempDir(t);
	const filePath = path.join(dir, 'a.js');
	await writeFile(filePath, 'body');
	let seenPath = '';
	const flow = new Flow([prefixPlugin('/* a */'), () => through2.obj((file: File, _encoding, callback) => {
		seenPath = file.path;
		callback(null, file);
	})]).inputFile(filePath);
	assert.equal((await flow.run()).toString(), '/* a */body');
	assert.equal(seenPath, filePath);
});

test('Steps of every kind mix in one flow: function, stream, function, child process, stream, plugin', async () => {
	const flow = new Flow([
		(text: string) => `${text}-a`,
		upperNode,
		async (text: string) => `${text}-b`,
		() => spawn('rev'),
		upperStreamx,
		prefixPlugin('>'),
		(text: string, done: (error: null, output: string) => void) => done(null, `${text}<`),
	]);
	assert.equal((await flow.input('x').run()).toString(), '>B-A-X<');
});

test('Every input kind is accepted: string, Buffer, Readable, vinyl files and a path', async (t) => {
	const dir = await createTempDir(t);
	const filePath = path.join(dir, 'in.txt');
	await writeFile(filePath, 'from a file');
	const step = (text: string) => `[${text}]`;
	const inputs: Array<[string, (flow: Flow) => Flow, string]> = [
		['string', (flow) => flow.input('text'), '[text]'],
		['Buffer', (flow) => flow.input(Buffer.from([0x68, 0x69])), '[hi]'],
		['Readable', (flow) => flow.input(Readable.from([Buffer.from('st'), Buffer.from('ream')])), '[stream]'],
		['vinyl buffer', (flow) => flow.input(new File({ path: filePath, contents: Buffer.from('vinyl') })), '[vinyl]'],
		['vinyl stream', (flow) => flow.input(new File({ path: filePath, contents: Readable.from([Buffer.from('vs')]) })), '[vs]'],
		['vinyl streamx', (flow) => flow.input(new File({ path: filePath, contents: streamx.Readable.from([Buffer.from('sx')]) as unknown as NodeJS.ReadableStream })), '[sx]'],
		['vinyl null', (flow) => flow.input(new File({ path: filePath, contents: null })), '[]'],
		['path', (flow) => flow.inputFile(filePath), '[from a file]'],
	];
	for (const [label, setInput, expected] of inputs) {
		assert.equal((await setInput(new Flow([step])).run()).toString(), expected, label);
	}
});

test('A flow with no steps gives its input unchanged, bytes exact', async () => {
	const bytes = Buffer.from([0, 255, 128, 10, 13, 0xc3]);
	assert.deepEqual(await new Flow([]).input(bytes).run(), bytes);
});

test('A function step that returns its text unchanged leaves the bytes exact, even if not UTF-8', async () => {
	const bytes = Buffer.from([0x61, 0xff, 0xc3, 0x0a]);
	assert.deepEqual(await new Flow([(text: string) => text, async (text: string) => text]).input(bytes).run(), bytes);
	// Text that changes is UTF-8 from then on.
	assert.deepEqual(await new Flow([(text: string) => `${text}!`]).input(bytes).run(), Buffer.from('a\ufffd\ufffd\n!'));
});

test('A run of streams is piped without buffering: the first chunk comes out before the input ends', async () => {
	const input = new PassThrough();
	const output = createCollector();
	const flow = new Flow([upperNode, () => spawn('cat'), upperStreamx]).input(input).output(output);
	flow.exec();
	input.write('first ');
	while (output.writes === 0) {
		await delay(5);
	}

	assert.equal(output.text(), 'FIRST ');
	input.end('second');
	await once(flow, 'done');
	assert.equal(output.text(), 'FIRST SECOND');
});

test('exec() starts the flow and emits exec, then done; output() may be a function', async () => {
	const events: string[] = [];
	let result = '';
	const flow = new Flow([(text: string) => text.toUpperCase()]).input('ab').output((text) => {
		result = text;
	});
	flow.on('exec', () => events.push('exec'));
	flow.on('done', () => events.push('done'));
	assert.equal(flow.exec(), flow);
	await once(flow, 'done');
	await delay(0);
	assert.deepEqual(events, ['exec', 'done']);
	assert.equal(result, 'AB');
});

test('exec() emits error with the step and input named', async () => {
	const flow = new Flow([() => {
		throw new Error('boom');
	}], { name: 'named-flow' }).input('x');
	const [error] = await once(flow.exec(), 'error') as [FlowcatError];
	assert.equal(error.message, 'Step 1 of 1 (stream factory) failed for named-flow: boom');
});

test('Task is the same class as Flow', () => {
	assert.equal(Task, Flow);
	assert.ok(new Task([]) instanceof Flow);
});

test('Errors name the input path, the step by name and position, and keep the cause', async (t) => {
	const dir = await createTempDir(t);
	const filePath = path.join(dir, 'src.js');
	await writeFile(filePath, 'code');
	const cause = new Error('Unexpected token (12:4)');
	const flow = new Flow([(text: string) => text, function minify() {
		throw cause;
	}, (text: string) => text]).inputFile(filePath);
	const relative = path.relative(process.cwd(), filePath);
	await assert.rejects(flow.run(), (error: FlowcatError) => {
		assert.ok(error instanceof FlowcatError);
		assert.equal(error.message, `Step "minify" (2 of 3, stream factory) failed for ${relative}: Unexpected token (12:4)`);
		assert.equal(error.code, 'FLOWCAT_STEP_FAILED');
		assert.equal(error.path, relative);
		assert.equal(error.step, 'minify');
		assert.equal(error.stepIndex, 2);
		assert.equal(error.cause, cause);
		return true;
	});
});

test('A function step that returns neither a string nor a Buffer fails with a TypeError naming the step', async () => {
	for (const value of [42, { a: 1 }, undefined]) {
		const flow = new Flow([(text: string) => text, ((_text: string) => value) as unknown as (text: string) => string], { name: 'odd' });
		await assert.rejects(flow.input('x').run(), (error: TypeError & { code: string; stepIndex: number }) => {
			assert.ok(error instanceof TypeError);
			assert.match(error.message, /^Step 2 of 2 \(sync function\) failed for odd: returned .* expected a string or a Buffer$/);
			assert.equal(error.stepIndex, 2);
			return true;
		});
	}
});

test('Rejections, callback errors and thrown non-errors all fail the flow with their step', async () => {
	const cases: Array<[Flow, RegExp]> = [
		[new Flow([async (_text: string) => Promise.reject(new Error('nope'))]), /^Step 1 of 1 \(promise function\) failed for item: nope$/],
		[new Flow([(_text: string, done: (error: Error) => void) => done(new Error('cb'))]), /^Step 1 of 1 \(callback function\) failed for item: cb$/],
		[new Flow([(_text: string) => {
			// eslint-disable-next-line @typescript-eslint/only-throw-error
			throw 'a string';
		}]), /^Step 1 of 1 \(sync function\) failed for item: Non-error value thrown: a string \(string\)$/],
	];
	for (const [flow, message] of cases) {
		await assert.rejects(flow.input('x').run(), (error: Error) => {
			assert.match(error.message.replace('unnamed flow', 'item'), message);
			assert.ok(error.cause instanceof Error);
			return true;
		});
	}
});

test('A child process that exits non-zero fails the flow quoting the end of stderr', async () => {
	const flow = new Flow([() => spawn(process.execPath, [fixture('fail.js'), '3'])], { name: 'cmd' }).input('x');
	await assert.rejects(flow.run(), (error: FlowcatError) => {
		assert.match(error.message, /^Step 1 of 1 \(child process\) failed for cmd: Command failed with exit code 3: .*fail\.js 3\nline one of the complaint\nfixture failed on purpose$/);
		assert.equal((error.cause as { exitCode: number }).exitCode, 3);
		return true;
	});
});

test('A command that does not exist fails the flow with ENOENT', async () => {
	const flow = new Flow([() => spawn('flowcat-no-such-command')], { name: 'missing' }).input('x');
	await assert.rejects(flow.run(), /^FlowcatError: Step 1 of 1 \(child process\) failed for missing: spawn flowcat-no-such-command ENOENT$/);
});

test('A missing input file fails the flow naming the file', async (t) => {
	const dir = await createTempDir(t);
	const missing = path.join(dir, 'missing.txt');
	for (const steps of [[], [(text: string) => text], [upperNode]]) {
		await assert.rejects(new Flow(steps).inputFile(missing).run(), (error: FlowcatError) => {
			assert.equal(error.code, 'FLOWCAT_INPUT_FAILED');
			assert.match(error.message, /^Could not read the input of .*missing\.txt: ENOENT/);
			return true;
		});
	}
});

test('A step of no parameters that returns a Promise is told it needs one', async () => {
	const flow = new Flow([(async () => 'x') as unknown as () => Transform], { name: 'lazy' }).input('x');
	await assert.rejects(flow.run(), {
		name: 'TypeError',
		message: 'Step 1 of 1 (factory) failed for lazy: returned a Promise; a function step takes the input as its parameter, e.g. `async (text) => ...`',
	});
});

test('A factory that returns something else fails with a TypeError naming the step', async () => {
	const flow = new Flow([(() => 'not a stream') as unknown as () => Transform], { name: 'weird' }).input('x');
	await assert.rejects(flow.run(), (error: Error) => {
		assert.ok(error instanceof TypeError);
		assert.match(error.message, /^Step 1 of 1 \(factory\) failed for weird: returned not a stream \(string\); expected a Transform/);
		return true;
	});
});

test('Bad arguments fail at once with a TypeError saying what was expected', () => {
	assert.throws(() => new Flow('nope' as never), { name: 'TypeError', message: 'Expected `steps` to be an array of step functions, instead got nope (string)' });
	assert.throws(() => new Flow([42 as never]), { name: 'TypeError', message: /^Expected `steps\[0\]` to be a function/ });
	assert.throws(() => new Flow([]).input(42 as never), { name: 'TypeError', message: /^Expected `input` to be a string, a Buffer, a readable stream or a vinyl File, instead got 42 \(number\)$/ });
	assert.throws(() => new Flow([]).inputFile(''), { name: 'TypeError' });
	assert.throws(() => new Flow([]).output(42 as never), { name: 'TypeError' });
	assert.throws(() => new Flow([]).input('a').input('b'), /input of unnamed flow is already set/);
});

test('Creating 10,000 flows over real files opens no file and starts no process', async (t) => {
	const dir = await createTempDir(t);
	await writeFile(path.join(dir, 'f.txt'), 'x');
	let factoriesCalled = 0;
	const before = openFileDescriptors();
	const flows = Array.from({ length: 10_000 }, () => new Flow([() => {
		factoriesCalled += 1;
		return spawn('cat');
	}]).inputFile(path.join(dir, 'f.txt')));
	assert.equal(openFileDescriptors(), before);
	assert.equal(factoriesCalled, 0);
	assert.equal(flows.length, 10_000);
});
