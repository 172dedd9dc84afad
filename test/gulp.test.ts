import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { promisify } from 'node:util';
import vm from 'node:vm';
import sourcemaps from 'gulp-sourcemaps';
import { SourceMapConsumer } from 'source-map';
import through2 from 'through2';
import File from 'vinyl';
import vfs from 'vinyl-fs';
import { concatFlows, concatToVinyl, concatToVinylStream, Flow, FlowcatError } from '../lib/index';
import { packager } from '../examples/packager';
import { createTempDir, isRunning } from './helpers';

const execFileAsync = promisify(execFile);
const root = path.resolve(__dirname, '..');
const oldTime = new Date('2024-01-01T00:00:00Z');

async function writeSources(dir: string, files: Record<string, string | Buffer>): Promise<void> {
	for (const [name, contents] of Object.entries(files)) {
		const filePath = path.join(dir, name);
		await mkdir(path.dirname(filePath), { recursive: true });
		await writeFile(filePath, contents);
		await utimes(filePath, oldTime, oldTime);
	}
}

// Records the order in which files reach the next stage (gulp 5 does not promise glob order).
function recordOrder(order: string[]): Transform {
	return through2.obj((file: File, _encoding, callback) => {
		order.push(file.relative);
		callback(null, file);
	});
}

test('concatFlows joins the files\' flow outputs in arrival order, with header, separator and footer', async (t) => {
	const dir = await createTempDir(t);
	await writeSources(dir, { 'src/a.txt': 'alpha', 'src/b.txt': 'beta', 'src/sub/c.txt': 'gamma' });
	const order: string[] = [];
	await pipeline(
		vfs.src('src/**/*.txt', { cwd: dir }),
		recordOrder(order),
		concatFlows('all.txt', {
			header: '<<',
			separator: '|',
			footer: (out) => {
				out.write('>>');
			},
			steps: (file) => [(text: string) => `${file.relative}=${text.toUpperCase()}`],
			log: false,
		}),
		vfs.dest('out', { cwd: dir }),
	);
	const expected = `<<${order.map((name) => `${name}=${(name.includes('a.txt') ? 'alpha' : name.includes('b.txt') ? 'beta' : 'gamma').toUpperCase()}`).join('|')}>>`;
	assert.equal(await readFile(path.join(dir, 'out/all.txt'), 'utf8'), expected);
	assert.equal(order.length, 3);
});

test('The output file takes cwd and base from the first file, and the default separator is a newline', async () => {
	const plugin = concatFlows('bundle.js', { log: false });
	const output = new Promise<File>((resolve) => plugin.once('data', resolve));
	plugin.write(new File({ cwd: '/work', base: '/work/src', path: '/work/src/a.js', contents: Buffer.from('a') }));
	plugin.write(new File({ cwd: '/other', base: '/other/lib', path: '/other/lib/b.js', contents: Buffer.from('b') }));
	plugin.end();
	const file = await output;
	assert.equal(file.cwd, '/work');
	assert.equal(file.base, '/work/src');
	assert.equal(file.path, '/work/src/bundle.js');
	assert.equal(file.contents!.toString(), 'a\nb');
});

// The input ends only once the steps have run for `started` of its files: flows must start
// while it is still open, each as it arrives without a cache; with one, in batches, whether a
// batch fills (many files) or waits (a slow source).
for (const [files, started, cached] of [[2, 1, false], [200, 100, false], [2, 1, true], [200, 100, true]] as const) {
	test(`Flows start before the input ends (${files} files, a slow source${cached ? ', cached' : ''})`, { timeout: 10_000 }, async (t) => {
		const cache = cached ? { dir: path.join(await createTempDir(t), 'cache') } : undefined;
		let ran = 0;
		let onStarted!: () => void;
		const enoughStarted = new Promise<void>((resolve) => {
			onStarted = resolve;
		});
		const plugin = concatFlows('out.txt', {
			steps: [(text: string) => {
				ran += 1;
				if (ran === started) {
					onStarted();
				}

				return text.toUpperCase();
			}],
			cache,
			log: false,
		});
		const output = new Promise<File>((resolve) => plugin.once('data', resolve));
		const names = Array.from({ length: files }, (_, index) => `f${index}`);
		for (const name of names) {
			plugin.write(new File({ cwd: '/w', base: '/w', path: `/w/${name}.txt`, contents: Buffer.from(name) }));
		}

		await enoughStarted;
		plugin.end();
		assert.equal((await output).contents!.toString(), names.join('\n').toUpperCase());
	});
}

test('No input file gives no output file, and null files are skipped', async () => {
	const pushed: File[] = [];
	const empty = concatFlows('none.js', { log: false });
	empty.on('data', (file: File) => pushed.push(file));
	empty.end();
	await new Promise((resolve) => empty.on('end', resolve));
	assert.equal(pushed.length, 0);

	const withNull = concatFlows('some.js', { log: false });
	withNull.on('data', (file: File) => pushed.push(file));
	withNull.write(new File({ path: '/x/dir', contents: null }));
	withNull.write(new File({ path: '/x/a.js', contents: Buffer.from('a') }));
	withNull.end();
	await new Promise((resolve) => withNull.on('end', resolve));
	assert.equal(pushed.length, 1);
	assert.equal(pushed[0].contents!.toString(), 'a');
});

test('Streaming vinyl files (buffer: false) give a streaming output file with the right bytes', async (t) => {
	const dir = await createTempDir(t);
	await writeSources(dir, { 'src/1.txt': 'one', 'src/2.txt': 'two' });
	const seen: boolean[] = [];
	await pipeline(
		vfs.src('src/*.txt', { cwd: dir, buffer: false }),
		concatFlows('joined.txt', { steps: [() => new PassThrough()], separator: '', log: false }),
		through2.obj((file: File, _encoding, callback) => {
			seen.push(file.isStream());
			callback(null, file);
		}),
		vfs.dest('out', { cwd: dir }),
	);
	assert.deepEqual(seen, [true]);
	assert.match(await readFile(path.join(dir, 'out/joined.txt'), 'utf8'), /^(onetwo|twoone)$/);
});

test('Binary files read with encoding: false stay byte-exact', async (t) => {
	const dir = await createTempDir(t);
	const a = randomBytes(70_000);
	const b = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]);
	await writeSources(dir, { 'bin/a.bin': a, 'bin/b.bin': b });
	const order: string[] = [];
	await pipeline(
		vfs.src('bin/*.bin', { cwd: dir, encoding: false }),
		recordOrder(order),
		concatFlows('all.bin', { separator: '', log: false }),
		vfs.dest('out', { cwd: dir, encoding: false }),
	);
	const expected = Buffer.concat(order.map((name) => (name === 'a.bin' ? a : b)));
	assert.deepEqual(await readFile(path.join(dir, 'out/all.bin')), expected);
});

test('With a cache the plugin emits miss, then hit with the vinyl file, and a second run runs no step', async (t) => {
	const dir = await createTempDir(t);
	await writeSources(dir, { 'src/a.js': 'a()', 'src/b.js': 'b()' });
	let stepRuns = 0;
	const build = async () => {
		const events: string[] = [];
		const plugin = concatFlows('out.js', {
			steps: [(text: string) => {
				stepRuns += 1;
				return `${text};`;
			}],
			cache: { dir: path.join(dir, 'cache') },
			log: false,
		});
		plugin.on('hit', (file: File) => events.push(`hit ${file.relative}`));
		plugin.on('miss', (file: File) => events.push(`miss ${file.relative}`));
		await pipeline(vfs.src('src/*.js', { cwd: dir }), plugin, vfs.dest('out', { cwd: dir }));
		return events.sort();
	};
	assert.deepEqual(await build(), ['miss a.js', 'miss b.js']);
	assert.deepEqual(await build(), ['hit a.js', 'hit b.js']);
	assert.equal(stepRuns, 2);
	assert.match(await readFile(path.join(dir, 'out/out.js'), 'utf8'), /^(a\(\);\nb\(\);|b\(\);\na\(\);)$/);
});

test('A failing flow emits one error naming the file and step, pushes nothing, and stops the others', async (t) => {
	const dir = await createTempDir(t);
	await writeSources(dir, { 'src/good.js': 'good', 'src/bad.js': 'bad', 'src/slow.js': 'slow' });
	const pidFile = path.join(dir, 'pid');
	const { spawn } = await import('node:child_process');
	const plugin = concatFlows('out.js', {
		steps: (file) => (file.basename === 'bad.js'
			? [async function minify(_text: string) {
				while (!(await readFile(pidFile, 'utf8').catch(() => ''))) {
					await new Promise((resolve) => setTimeout(resolve, 5));
				}

				throw new Error('Unexpected token (1:3)');
			}]
			: file.basename === 'slow.js' ? [() => spawn(process.execPath, [path.join(__dirname, 'fixtures/forever.js'), pidFile])] : []),
		log: false,
	});
	const errors: FlowcatError[] = [];
	const pushed: File[] = [];
	plugin.on('error', (error: FlowcatError) => errors.push(error));
	plugin.on('data', (file: File) => pushed.push(file));
	await assert.rejects(pipeline(vfs.src('src/*.js', { cwd: dir }), plugin, vfs.dest('out', { cwd: dir })));
	assert.equal(errors.length, 1);
	assert.equal(errors[0].message, 'flowcat: Step "minify" (1 of 1, promise function) failed for src/bad.js: Unexpected token (1:3)');
	assert.equal(errors[0].stepIndex, 1);
	assert.equal((errors[0].cause as Error).message, 'Unexpected token (1:3)');
	assert.equal(pushed.length, 0);
	assert.deepEqual(await readdir(dir).then((names) => names.filter((name) => name === 'out')), []);
	assert.equal(isRunning(Number(await readFile(pidFile, 'utf8'))), false);
});

test('Input files are never changed, even when a plugin step changes its file', async () => {
	const input = new File({ path: '/src/a.js', base: '/src', contents: Buffer.from('original') });
	const mutator = () => through2.obj((file: File, _encoding, callback) => {
		file.contents = Buffer.from('changed');
		file.path = '/src/renamed.js';
		callback(null, file);
	});
	const output = await concatToVinyl('out.js', [new Flow([mutator]).input(input)]);
	assert.equal(output.contents!.toString(), 'changed');
	assert.equal(input.contents!.toString(), 'original');
	assert.equal(input.path, '/src/a.js');
});

// Where does `needle` stand in `text` (1-based line, 0-based column)?
function positionOf(text: string, needle: string): { line: number; column: number } {
	const index = text.indexOf(needle);
	assert.ok(index >= 0, `${needle} is in the output`);
	const before = text.slice(0, index).split('\n');
	return { line: before.length, column: before.at(-1)!.length };
}

// src → gulp-sourcemaps → `plugin`; resolves with the one file the plugin pushed.
async function bundleWithSourceMaps(source: NodeJS.ReadableStream, plugin: NodeJS.ReadWriteStream): Promise<File> {
	let output: File | undefined;
	await pipeline(source, sourcemaps.init(), plugin, through2.obj((file: File, _encoding, callback) => {
		output = file;
		callback(null, file);
	}));
	return output!;
}

test('Source maps from gulp-sourcemaps map every line back to its file, around header, separators and footer', async (t) => {
	const dir = await createTempDir(t);
	await writeSources(dir, {
		'src/one.js': 'var first = 1;\nvar second = 2;\n',
		'src/two.js': '// two\nfunction three() {\n  return 3;\n}\n',
	});
	const output = await bundleWithSourceMaps(vfs.src('src/*.js', { cwd: dir }), concatFlows('bundle.js', { header: '/* header\n   two lines */\n', separator: '\n;\n', footer: '\n/* footer */\n', log: false }));
	const text = output.contents!.toString();
	const consumer = await new SourceMapConsumer(output.sourceMap);
	try {
		for (const [needle, source, line] of [['var second', 'one.js', 2], ['return 3', 'two.js', 3], ['function three', 'two.js', 2]] as const) {
			const original = consumer.originalPositionFor(positionOf(text, needle));
			assert.deepEqual([original.source, original.line], [source, line], needle);
		}

		assert.equal(consumer.originalPositionFor(positionOf(text, 'two lines')).source, null);
		assert.equal(consumer.originalPositionFor(positionOf(text, 'footer')).source, null);
		assert.deepEqual([...consumer.sources].sort(), ['one.js', 'two.js']);
	} finally {
		consumer.destroy();
	}
});

test('A function step that gives its text back unchanged keeps the map; one that rewrites it drops it', async (t) => {
	const dir = await createTempDir(t);
	await writeSources(dir, {
		'src/one.js': 'var first = 1;\nvar second = 2;\n',
		'src/two.js': '// two\nfunction three() {\n  return 3;\n}\n',
	});
	const steps = (file: File) => [file.basename === 'one.js' ? (text: string) => text : (text: string) => text.replace('three', 'THREE')];
	const output = await bundleWithSourceMaps(vfs.src('src/*.js', { cwd: dir }), concatFlows('bundle.js', { steps, log: false }));
	const text = output.contents!.toString();
	const consumer = await new SourceMapConsumer(output.sourceMap);
	try {
		const kept = consumer.originalPositionFor(positionOf(text, 'var second'));
		assert.deepEqual([kept.source, kept.line], ['one.js', 2]);
		assert.equal(consumer.originalPositionFor(positionOf(text, 'return 3')).source, null);
	} finally {
		consumer.destroy();
	}
});

test('Source maps survive wrap() and a minifier plugin step (the example packager\'s steps)', async (t) => {
	const dir = await createTempDir(t);
	await cp(path.join(root, 'examples/app'), path.join(dir, 'app'), { recursive: true });
	const output = await bundleWithSourceMaps(vfs.src('app/src/**/*.js', { cwd: dir, base: path.join(dir, 'app/src') }), concatFlows('app.js', { ...packager({ entry: 'index.js', globalName: 'app' }), log: false }));
	const text = output.contents!.toString();
	const consumer = await new SourceMapConsumer(output.sourceMap);
	try {
		const original = consumer.originalPositionFor(positionOf(text, 'Math.round'));
		assert.deepEqual([original.source, original.line], ['lib/math.js', 6]);
		const tax = consumer.originalPositionFor(positionOf(text, '.2)'));
		assert.deepEqual([tax.source, tax.line], ['index.js', 7]);
	} finally {
		consumer.destroy();
	}

	const context = vm.createContext({});
	vm.runInContext(text, context);
	assert.equal(context.app, '3 items, total €28.80');
});

test('concatToVinyl gives one vinyl file from flows and writers; concatToVinylStream gives it as a stream', async () => {
	const items = [(out: NodeJS.WritableStream) => {
		out.write('[');
	}, new Flow([(text: string) => text.toUpperCase()]).input('x'), new Flow([]).input(Readable.from(['y'])), (out: NodeJS.WritableStream) => {
		out.write(']');
	}];
	const file = await concatToVinyl('out.txt', items, { cwd: '/project', base: '/project/dist' });
	assert.equal(file.path, '/project/dist/out.txt');
	assert.equal(file.relative, 'out.txt');
	assert.equal(file.contents!.toString(), '[Xy]');

	const files: File[] = [];
	for await (const streamed of concatToVinylStream('again.txt', [new Flow([]).input('z')])) {
		files.push(streamed as File);
	}

	assert.equal(files.length, 1);
	assert.equal(files[0].contents!.toString(), 'z');
	await assert.rejects(concatToVinyl('', []), { name: 'TypeError' });
});

test('Bad plugin options throw at once', () => {
	assert.throws(() => concatFlows(undefined as never), { name: 'TypeError', message: /^Expected `fileName` to be a non-empty string/ });
	assert.throws(() => concatFlows('a.js', { steps: 'terser' as never }), { name: 'TypeError', message: /^Expected `steps` to be an array of steps or a function/ });
	assert.throws(() => concatFlows('a.js', { separator: 1 as never }), { name: 'TypeError' });
	assert.throws(() => concatFlows('a.js', { header: 2 as never }), { name: 'TypeError', message: /^Expected `header` to be a string or a writer function/ });
	assert.throws(() => concatFlows('a.js', { steps: [(text: string) => text, 'terser' as never] }), { name: 'TypeError', message: /^Expected `steps\[1\]` to be a function/ });
});

test('A steps function that throws, or gives a bad step, fails the stream naming the file', async () => {
	const cases = [
		[() => {
			throw new Error('no config for this file');
		}, /^flowcat: The steps function failed for b\.js: no config for this file$/],
		[() => [42], /^flowcat: The steps function failed for b\.js: Expected `steps\[0\]` to be a function/],
	] as const;
	for (const [failing, message] of cases) {
		const plugin = concatFlows('out.js', { steps: (file) => (file.relative === 'b.js' ? failing() as never : []), log: false });
		const failed = new Promise<Error>((resolve) => plugin.once('error', resolve));
		plugin.write(new File({ cwd: '/w', base: '/w', path: '/w/a.js', contents: Buffer.from('a') }));
		plugin.write(new File({ cwd: '/w', base: '/w', path: '/w/b.js', contents: Buffer.from('b') }));
		plugin.end();
		const error = await failed as FlowcatError;
		assert.match(error.message, message);
		assert.equal(error.path, 'b.js');
		assert.ok(error.cause instanceof Error);
	}
});

test('Vinyl files with no path are concatenated, and a steps function failing on one names its place', async () => {
	const pathless = (text: string) => new File({ contents: Buffer.from(text) });
	const mapped = Object.assign(pathless('c'), { sourceMap: { version: 3, file: '', sources: [], names: [], mappings: '' } });
	const plugin = concatFlows('out.js', { log: false });
	const output = new Promise<File>((resolve, reject) => plugin.once('data', resolve).once('error', reject));
	for (const file of [pathless('a'), pathless('b'), mapped]) {
		plugin.write(file);
	}

	plugin.end();
	const file = await output;
	assert.equal(file.contents!.toString(), 'a\nb\nc');
	assert.ok(file.sourceMap, 'a map, since an input had one');

	const failing = concatFlows('out.js', {
		steps: (input) => {
			if (input.contents!.toString() === 'b') {
				throw new Error('no config');
			}

			return [];
		},
		log: false,
	});
	const failed = new Promise<Error>((resolve) => failing.once('error', resolve));
	failing.write(pathless('a'));
	failing.write(pathless('b'));
	failing.end();
	assert.match((await failed).message, /^flowcat: The steps function failed for file 2 \(no path\): no config$/);
});

test('npx gulp builds the example bundle from a fresh folder, and the second run is all hits', { timeout: 120_000 }, async (t) => {
	const dir = await createTempDir(t);
	await cp(path.join(root, 'examples/app'), path.join(dir, 'examples/app'), { recursive: true });
	// A project of its own, with this repo's dependencies installed (gulp finds its .ts loader there).
	await symlink(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
	const gulp = path.join(root, 'node_modules/gulp/bin/gulp.js');
	const args = [gulp, '--gulpfile', path.join(root, 'gulpfile.ts'), '--cwd', dir];
	const first = await execFileAsync(process.execPath, args, { cwd: dir });
	assert.match(first.stdout, /flowcat: app\.js from 5 files \(0 hits, 5 misses\) in \d+ ms/);
	const bundle = await readFile(path.join(dir, 'examples/dist/app.js'), 'utf8');
	assert.match(bundle, /\/\/# sourceMappingURL=app\.js\.map/);
	const map = JSON.parse(await readFile(path.join(dir, 'examples/dist/app.js.map'), 'utf8')) as { sources: string[] };
	assert.deepEqual([...map.sources].sort(), ['index.js', 'items.js', 'lib/format.js', 'lib/math.js', 'lib/settings.js']);
	const context = vm.createContext({});
	vm.runInContext(bundle, context);
	assert.equal(context.app, '3 items, total €28.80');

	const second = await execFileAsync(process.execPath, args, { cwd: dir });
	assert.match(second.stdout, /flowcat: app\.js from 5 files \(5 hits, 0 misses\)/);
	assert.equal(await readFile(path.join(dir, 'examples/dist/app.js'), 'utf8'), bundle);
});

test('The watch task rebuilds on change, running only the changed file\'s steps', { timeout: 120_000 }, async (t) => {
	const dir = await createTempDir(t);
	const app = path.join(dir, 'examples/app/src');
	await cp(path.join(root, 'examples/app'), path.join(dir, 'examples/app'), { recursive: true });
	for (const name of await readdir(app, { recursive: true })) {
		await utimes(path.join(app, name), oldTime, oldTime);
	}

	await symlink(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
	const { spawn } = await import('node:child_process');
	const watcher = spawn(process.execPath, [path.join(root, 'node_modules/gulp/bin/gulp.js'), '--gulpfile', path.join(root, 'gulpfile.ts'), '--cwd', dir, 'watch'], { cwd: dir });
	t.after(() => {
		watcher.kill();
	});
	let log = '';
	watcher.stdout.on('data', (chunk: Buffer) => {
		log += chunk.toString();
	});
	const waitFor = async (pattern: RegExp) => {
		while (!pattern.test(log)) {
			assert.equal(watcher.exitCode, null, `gulp watch exited:\n${log}`);
			await new Promise((resolve) => setTimeout(resolve, 20));
		}
	};

	await waitFor(/app\.js from 5 files \(0 hits, 5 misses\)/);
	await writeFile(path.join(app, 'lib/settings.js'), "module.exports = { currency: '$' };\n");
	await waitFor(/app\.js from 5 files \(4 hits, 1 miss\)/);
	await waitFor(/Finished 'build'.*\n(.|\n)*Finished 'build'/);
	const context = vm.createContext({});
	vm.runInContext(await readFile(path.join(dir, 'examples/dist/app.js'), 'utf8'), context);
	assert.equal(context.app, '3 items, total $28.80');
});

test('On a terminal a long run shows its progress; piped, only the summary line', { skip: spawnSync('sh', ['-c', 'command -v script']).status !== 0 && 'no script(1) to make a terminal', timeout: 60_000 }, async () => {
	const fixtureScript = path.join(__dirname, 'fixtures/progress.ts');
	const env = { ...process.env };
	delete env.CI;
	const onTerminal = spawnSync('script', ['-qec', `"${process.execPath}" --import tsx "${fixtureScript}"`, '/dev/null'], { cwd: root, env, encoding: 'utf8' });
	assert.match(onTerminal.stdout, /\rflowcat: \d+\/24 flows/);
	assert.match(onTerminal.stdout, /flowcat: out\.js from 24 files in \d+ ms/);
	const piped = spawnSync(process.execPath, ['--import', 'tsx', fixtureScript], { cwd: root, env, encoding: 'utf8' });
	assert.doesNotMatch(piped.stdout + piped.stderr, /\/24 flows/);
	assert.match(piped.stdout, /flowcat: out\.js from 24 files in \d+ ms/);
});
