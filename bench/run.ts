// The benchmarks: flowcat beside the alternatives, in one run, as medians over several runs.
// Usage: npm run bench            (full: 5 runs each, 512 MiB, up to 10,000 files; ~10 min)
//        npm run bench -- --quick (3 runs, smaller sizes; ~1 min)
// Prints tables, writes bench/RESULTS.md and bench/scaling.svg, and updates the README.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeLargeFiles, writeSmallFiles } from './fixtures';
import { renderScalingChart, type Series } from './chart';
import { hasNginx, startCacheServer } from '../scripts/cache-server';

const quick = process.argv.includes('--quick');
// --only=1,4 runs some scenarios (while profiling); RESULTS.md and the README are then left alone.
const only = process.argv.find((argument) => argument.startsWith('--only='))?.slice(7).split(',');
const wanted = (scenario: number) => !only || only.includes(String(scenario));
const runs = quick ? 3 : 5;
const root = path.resolve(__dirname, '..');
const contenders = path.join(__dirname, 'contenders');
const work = mkdtempSync(path.join(os.tmpdir(), 'flowcat-bench-'));
const report: string[] = [];

interface Contender {
	name: string;
	command: string;
	args: string[];
	/** Where it writes; checked against the reference after its first run. */
	output: string;
	/** Exact bytes, or the same lines in any order (gulp's glob order is its own). */
	compare: 'exact' | 'lines';
	/** Runs before each timed run, untimed. */
	prepare?: (run: number) => void;
	runs?: number;
}

interface Result {
	name: string;
	wallMs: number;
	/** Each run's wall time, in run order (runs go round robin across contenders). */
	samplesMs: number[];
	rssMB: number;
	extra: Record<string, number | undefined>;
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function node(script: string, ...args: string[]): Pick<Contender, 'command' | 'args'> {
	return { command: process.execPath, args: [path.join(contenders, script), ...args] };
}

function shell(script: string): Pick<Contender, 'command' | 'args'> {
	return { command: 'sh', args: ['-c', script] };
}

// One timed run under GNU time: wall time from here, peak RSS from time's %M.
function runOnce(contender: Contender): { wallMs: number; rssMB: number; stdout: string } {
	const stats = path.join(work, 'time.txt');
	const started = performance.now();
	const result = spawnSync('/usr/bin/time', ['-f', '%M', '-o', stats, contender.command, ...contender.args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
	const wallMs = performance.now() - started;
	if (result.status !== 0) {
		throw new Error(`${contender.name} failed (${result.status}):\n${result.stderr}`);
	}

	const rssKB = Number(readFileSync(stats, 'utf8').trim().split('\n').at(-1));
	return { wallMs, rssMB: rssKB / 1024, stdout: result.stdout };
}

function normalize(buffer: Buffer, compare: Contender['compare']): Buffer | string {
	return compare === 'exact' ? buffer : buffer.toString('latin1').split('\n').filter(Boolean).sort().join('\n');
}

// Runs every contender `runs` times, round robin so drift hits all alike; checks outputs.
function measure(title: string, list: Contender[], reference: Buffer): Result[] {
	const samples = new Map<string, Array<{ wallMs: number; rssMB: number; stdout: string }>>();
	const most = Math.max(...list.map((contender) => contender.runs ?? runs));
	for (let run = 0; run < most; run += 1) {
		for (const contender of list) {
			if (run >= (contender.runs ?? runs)) {
				continue;
			}

			contender.prepare?.(run);
			mkdirSync(path.dirname(contender.output), { recursive: true });
			const sample = runOnce(contender);
			if (run === 0) {
				const produced = readFileSync(contender.output);
				const same = contender.compare === 'exact' ? produced.equals(reference) : normalize(produced, 'lines') === normalize(reference, 'lines');
				if (!same) {
					throw new Error(`${title}: ${contender.name} gave a different output (${produced.length} bytes, expected ${reference.length})`);
				}
			}

			rmSync(contender.output, { force: true });
			samples.set(contender.name, [...(samples.get(contender.name) ?? []), sample]);
		}
	}

	return list.map(({ name }) => {
		const all = samples.get(name)!;
		const extra = JSON.parse(all.at(-1)!.stdout.trim().split('\n').at(-1) || '{}') as Result['extra'];
		return { name, wallMs: median(all.map((sample) => sample.wallMs)), samplesMs: all.map((sample) => sample.wallMs), rssMB: median(all.map((sample) => sample.rssMB)), extra };
	});
}

function table(title: string, results: Result[], baseline: string, notes: string[]): void {
	const base = results.find((result) => result.name === baseline)!;
	const lines = [
		`### ${title}`,
		'',
		`| contender | median wall | peak RSS | vs ${baseline} |`,
		'|---|---:|---:|---:|',
		...results.map((result) => `| ${result.name} | ${(result.wallMs / 1000).toFixed(2)} s | ${Math.round(result.rssMB)} MB | ${(base.wallMs / result.wallMs).toFixed(2)}× |`),
		'',
		...notes.map((note) => `- ${note}`),
		'',
	];
	publish(lines);
}

// Adds lines to the report and prints them.
function publish(lines: string[]): void {
	report.push(...lines);
	console.log(lines.join('\n'));
}

function check(label: string, ok: boolean, detail: string): string {
	return `${ok ? '✅' : '❌'} ${label}: ${detail}`;
}

function byName(results: Result[], name: string): Result {
	return results.find((result) => result.name === name)!;
}

function joinFiles(files: string[], separator: string, transform = (text: Buffer) => text): Buffer {
	const parts: Buffer[] = [];
	for (const [index, file] of files.entries()) {
		if (index > 0 && separator) {
			parts.push(Buffer.from(separator));
		}

		parts.push(transform(readFileSync(file)));
	}

	return Buffer.concat(parts);
}

function startup(): number {
	const floor = measure('start-up', [{ name: 'node -e ""', ...{ command: process.execPath, args: ['-e', ''] }, output: path.join(work, 'empty'), compare: 'exact', prepare: () => writeFileSync(path.join(work, 'empty'), '') }], Buffer.alloc(0));
	return floor[0].wallMs;
}

function latencyBound(startupMs: number): { floorMs: number; files: string[]; reference: Buffer } {
	const files = writeSmallFiles(path.join(work, 's1/src'), 1000);
	const src = path.dirname(files[0]);
	const out = (name: string) => path.join(work, 's1', name, 'bundle.js');
	const reference = joinFiles(files, '\n');
	const results = measure('latency-bound', [
		{ name: 'flowcat runner', ...node('runner.cjs', 'sleep5', src, out('runner'), '--separator'), output: out('runner'), compare: 'exact' },
		{ name: 'flowcat concatFlows', ...node('plugin.cjs', 'sleep5', src, out('plugin')), output: out('plugin'), compare: 'lines' },
		{ name: 'gulp + through2 (serial)', ...node('gulp.cjs', 'serial', src, out('serial')), output: out('serial'), compare: 'lines', runs: quick ? 1 : 3 },
		{ name: 'gulp + parallel-transform(16)', ...node('gulp.cjs', 'parallel', src, out('parallel')), output: out('parallel'), compare: 'lines' },
		{ name: 'gulp floor (no step)', ...node('gulp.cjs', 'floor', src, out('floor')), output: out('floor'), compare: 'lines' },
	], reference);
	const idealMs = startupMs + (1000 * 5) / 16;
	const runner = byName(results, 'flowcat runner').wallMs;
	const plugin = byName(results, 'flowcat concatFlows').wallMs;
	const floorMs = byName(results, 'gulp floor (no step)').wallMs;
	const serial = byName(results, 'gulp + through2 (serial)').wallMs;
	const parallel = byName(results, 'gulp + parallel-transform(16)').wallMs;
	table('1. Latency-bound steps: 1,000 files of 2–8 KB, a 5 ms async step each, limit 16', results, 'gulp + through2 (serial)', [
		`ideal schedule: start-up ${Math.round(startupMs)} ms + 1,000 × 5 ms / 16 = ${Math.round(idealMs)} ms`,
		check('runner ≥ 9× faster than the serial gulp idiom', serial / runner >= 9, `${(serial / runner).toFixed(1)}×`),
		check('runner within 1.3× of the ideal schedule', runner / idealMs <= 1.3, `${(runner / idealMs).toFixed(2)}×`),
		check('concatFlows faster than gulp + parallel-transform(16)', plugin < parallel, `${(parallel / plugin).toFixed(2)}×`),
		check('concatFlows within 1.15× of the gulp floor plus the schedule', plugin / (floorMs + 312.5) <= 1.15, `${(plugin / (floorMs + 312.5)).toFixed(2)}× of ${Math.round(floorMs + 312.5)} ms`),
	]);

	const early = measure('time to first byte', [
		{ name: 'runner, default', ...node('runner.cjs', 'sleep5', src, out('ttfb'), '--separator', '--ttfb'), output: out('ttfb'), compare: 'exact' },
		{ name: 'runner, early: true', ...node('runner.cjs', 'sleep5', src, out('early'), '--separator', '--ttfb', '--early'), output: out('early'), compare: 'exact' },
	], reference);
	const lines = [
		'### Early output: time to first byte on scenario 1',
		'',
		'| runner | first byte | done | peak RSS |',
		'|---|---:|---:|---:|',
		...early.map((result) => `| ${result.name} | ${Math.round(result.extra.ttfbMs ?? 0)} ms | ${(result.wallMs / 1000).toFixed(2)} s | ${Math.round(result.rssMB)} MB |`),
		'',
	];
	publish(lines);
	return { floorMs, files, reference };
}

function childProcesses(): void {
	const files = writeSmallFiles(path.join(work, 's2/src'), 200, 2);
	const src = path.dirname(files[0]);
	const out = (name: string) => path.join(work, 's2', `${name}.txt`);
	const command = "sh -c 'sleep 0.02; tr a-z A-Z'";
	const reference = joinFiles(files, '', (text) => Buffer.from(text.toString('latin1').toUpperCase(), 'latin1'));
	const results = measure('child processes', [
		{ name: 'flowcat runner', ...node('runner.cjs', 'shell', src, out('runner')), output: out('runner'), compare: 'exact' },
		{ name: 'GNU parallel -k -j 16', ...shell(`parallel -k -j 16 "${command} < {}" ::: ${src}/* > ${out('parallel')}`), output: out('parallel'), compare: 'exact' },
		{ name: 'sequential loop', ...shell(`for f in ${src}/*; do ${command} < "$f"; done > ${out('loop')}`), output: out('loop'), compare: 'exact', runs: quick ? 1 : 3 },
	], reference);
	const runner = byName(results, 'flowcat runner').wallMs;
	const parallel = byName(results, 'GNU parallel -k -j 16').wallMs;
	table(`2. Child processes: 200 files through \`${command}\`, 16 at once`, results, 'sequential loop', [
		check('runner faster than GNU parallel -k -j 16', runner < parallel, `${(parallel / runner).toFixed(2)}×`),
	]);
}

function throughput(): void {
	const count = quick ? 16 : 64;
	const files = writeLargeFiles(path.join(work, 's3/src'), count, 8);
	const src = path.dirname(files[0]);
	const out = (name: string) => path.join(work, 's3', name, 'all.txt');
	execFileSync('sh', ['-c', `cat ${src}/* > /dev/null`]);
	const reference = joinFiles(files, '');
	// Each run starts with no dirty pages to write back: the last one's 512 MiB would otherwise
	// slow whoever runs next.
	const prepare = () => execFileSync('sync');
	const results = measure('throughput', [
		{ name: 'flowcat runner', ...node('runner.cjs', 'none', src, out('runner')), output: out('runner'), compare: 'exact', prepare },
		{ name: 'cat', ...shell(`cat ${src}/* > ${out('cat')}`), output: out('cat'), compare: 'exact', prepare },
		{ name: 'cat piped into cat (no copy_file_range)', ...shell(`cat ${src}/* | cat > ${out('pipe')}`), output: out('pipe'), compare: 'exact', prepare },
		{ name: 'Node read/write loop (no flowcat)', ...node('node-copy.cjs', src, out('node')), output: out('node'), compare: 'exact', prepare },
		{ name: 'gulp-concat', ...node('gulp.cjs', 'floor', src, out('gulp'), '--raw'), output: out('gulp'), compare: 'exact', runs: quick ? 1 : 3, prepare },
	], reference);
	const runner = byName(results, 'flowcat runner');
	const cat = byName(results, 'cat');
	const pipe = byName(results, 'cat piped into cat (no copy_file_range)');
	const nodeLoop = byName(results, 'Node read/write loop (no flowcat)');
	table(`3. Throughput: ${count * 8} MiB in ${count} files, no steps`, results, 'gulp-concat', [
		check('runner within 1.5× of cat', runner.wallMs / cat.wallMs <= 1.5, `${(runner.wallMs / cat.wallMs).toFixed(2)}×`),
		`runner vs cat piped into cat: ${(runner.wallMs / pipe.wallMs).toFixed(2)}×; vs the Node read/write loop: ${(runner.wallMs / nodeLoop.wallMs).toFixed(2)}×; the Node loop vs cat: ${(nodeLoop.wallMs / cat.wallMs).toFixed(2)}×`,
		'GNU cat (coreutils 9) copies file to file with copy_file_range, inside the kernel; Node has no API that appends that way, so any Node program reads and writes every byte',
		check('runner peak RSS ≤ 150 MB', runner.rssMB <= 150, `${Math.round(runner.rssMB)} MB`),
	]);
}

function warmCache(s1: { floorMs: number; files: string[]; reference: Buffer }): void {
	const src = path.dirname(s1.files[0]);
	const out = (name: string) => path.join(work, 's4', name, 'bundle.js');
	const cache = (name: string) => path.join(work, 's4', `cache-${name}`);
	const fill = [
		node('runner.cjs', 'sleep5', src, out('fill'), '--separator', `--cache=${cache('runner')}`),
		node('plugin.cjs', 'sleep5', src, out('fill'), `--cache=${cache('plugin')}`),
		node('gulp.cjs', 'cache', src, out('fill'), `--cache=${cache('gulp')}`),
	];
	mkdirSync(path.join(work, 's4/fill'), { recursive: true });
	for (const { command, args } of fill) {
		execFileSync(command, args);
	}

	// One file changed before each run: a new mtime, so the stat key no longer matches.
	const touchOne = (run: number) => {
		const time = new Date(Date.UTC(2025, 0, 1, 0, 0, run));
		utimesSync(s1.files[100 + run], time, time);
	};

	const results = measure('warm cache', [
		{ name: 'flowcat runner, warm', ...node('runner.cjs', 'sleep5', src, out('runner'), '--separator', `--cache=${cache('runner')}`), output: out('runner'), compare: 'exact' },
		{ name: 'flowcat runner, one file changed', ...node('runner.cjs', 'sleep5', src, out('changed'), '--separator', `--cache=${cache('runner')}`), output: out('changed'), compare: 'exact', prepare: touchOne },
		{ name: 'flowcat runner, no step (same bytes)', ...node('runner.cjs', 'none', src, out('nostep'), '--separator'), output: out('nostep'), compare: 'exact' },
		{ name: 'flowcat concatFlows, warm', ...node('plugin.cjs', 'sleep5', src, out('plugin'), `--cache=${cache('plugin')}`), output: out('plugin'), compare: 'lines' },
		{ name: 'gulp-cache, warm', ...node('gulp.cjs', 'cache', src, out('gulp'), `--cache=${cache('gulp')}`), output: out('gulp'), compare: 'lines' },
	], s1.reference);
	const { wallMs: runner, samplesMs: warmMs } = byName(results, 'flowcat runner, warm');
	// Run i of each went one after the other: the median of those differences drifts least.
	const changeCostMs = median(byName(results, 'flowcat runner, one file changed').samplesMs.map((ms, run) => ms - warmMs[run]));
	const noStep = byName(results, 'flowcat runner, no step (same bytes)').wallMs;
	const plugin = byName(results, 'flowcat concatFlows, warm').wallMs;
	const gulpCache = byName(results, 'gulp-cache, warm').wallMs;
	table('4. Warm cache: scenario 1 again, second run', results, 'gulp-cache, warm', [
		check('warm runner ≥ 5× faster than gulp-cache warm', gulpCache / runner >= 5, `${(gulpCache / runner).toFixed(1)}×`),
		check('warm runner within 1.5× of a step-less concat', runner / noStep <= 1.5, `${(runner / noStep).toFixed(2)}×`),
		check('warm concatFlows ≥ 1.5× faster than gulp-cache warm', gulpCache / plugin >= 1.5, `${(gulpCache / plugin).toFixed(2)}×`),
		check('warm concatFlows within 1.2× of the gulp floor', plugin / s1.floorMs <= 1.2, `${(plugin / s1.floorMs).toFixed(2)}× of ${Math.round(s1.floorMs)} ms`),
		`one file changed costs ${Math.round(changeCostMs)} ms more than the warm run (median of the runs' differences; one step is 5 ms)`,
	]);
}

// The 1,000-file scenario on a fresh machine (empty local cache) with a warm remote cache
// (a private nginx), beside a cold run and a warm local run.
async function remoteCache(s1: { files: string[]; reference: Buffer }): Promise<void> {
	if (!hasNginx) {
		aptInstall('nginx');
	}

	const server = await startCacheServer(path.join(work, 's6/server'));
	try {
		const src = path.dirname(s1.files[0]);
		const out = (name: string) => path.join(work, 's6', name, 'bundle.js');
		const cache = (name: string) => path.join(work, 's6', `cache-${name}`);
		mkdirSync(path.join(work, 's6/fill'), { recursive: true });
		execFileSync(process.execPath, [path.join(contenders, 'runner.cjs'), 'sleep5', src, out('fill'), '--separator', `--cache=${cache('filler')}`, `--remote=${server.url}`]);
		execFileSync(process.execPath, [path.join(contenders, 'runner.cjs'), 'sleep5', src, out('fill'), '--separator', `--cache=${cache('local')}`]);
		const fresh = (name: string) => () => rmSync(cache(name), { recursive: true, force: true });
		const results = measure('remote cache', [
			{ name: 'cold: empty local cache, no remote', ...node('runner.cjs', 'sleep5', src, out('cold'), '--separator', `--cache=${cache('cold')}`), output: out('cold'), compare: 'exact', prepare: fresh('cold') },
			{ name: 'fresh machine, warm remote', ...node('runner.cjs', 'sleep5', src, out('remote'), '--separator', `--cache=${cache('fresh')}`, `--remote=${server.url}`), output: out('remote'), compare: 'exact', prepare: fresh('fresh') },
			{ name: 'warm local cache', ...node('runner.cjs', 'sleep5', src, out('local'), '--separator', `--cache=${cache('local')}`), output: out('local'), compare: 'exact' },
		], s1.reference);
		table('6. Remote cache: 1,000 files, 5 ms step, on a fresh machine', results, 'cold: empty local cache, no remote', [
			'the remote is a private nginx with WebDAV PUT on 127.0.0.1 (HTTP/1.1, no TLS)',
		]);
	} finally {
		server.stop();
	}
}

function scaling(startupMs: number): Series[] {
	// The runner over freshly written files (removed afterwards), in `mode`, files joined by `separator`.
	const measureRunner = (name: string, files: string[], mode: string, separator: string): Result => {
		const src = path.dirname(files[0]);
		const output = path.join(work, 's5', `${path.basename(src)}.out`);
		const flags = separator === '' ? [] : ['--separator'];
		const [result] = measure(`scaling ${name}`, [{ name, ...node('runner.cjs', mode, src, output, ...flags), output, compare: 'exact' }], joinFiles(files, separator));
		rmSync(src, { recursive: true });
		return result;
	};

	const counts = quick ? [100, 1000, 3000] : [100, 1000, 10_000];
	const byFiles = counts.map((count) => measureRunner(`${count} files`, writeSmallFiles(path.join(work, `s5/files-${count}`), count, 3), 'sleep5', '\n'));
	const sizes = quick ? [10, 100, 256] : [10, 100, 1000];
	const bySize = sizes.map((mebibytes) => measureRunner(`${mebibytes} MiB`, writeLargeFiles(path.join(work, `s5/size-${mebibytes}`), mebibytes, 1), 'stream', ''));

	const lines = [
		'### 5. Scaling',
		'',
		'| runner, 5 ms step, limit 16 | median wall | ideal schedule | peak RSS |',
		'|---|---:|---:|---:|',
		...byFiles.map((result, index) => `| ${result.name} | ${(result.wallMs / 1000).toFixed(2)} s | ${((startupMs + counts[index] * 5 / 16) / 1000).toFixed(2)} s | ${Math.round(result.rssMB)} MB |`),
		'',
		'| runner, a byte-stream step (outputs spooled) | median wall | peak RSS |',
		'|---|---:|---:|',
		...bySize.map((result) => `| ${result.name} in 1 MiB files | ${(result.wallMs / 1000).toFixed(2)} s | ${Math.round(result.rssMB)} MB |`),
		'',
		'![Scaling chart](bench/scaling.svg)',
		'',
	];
	publish(lines);
	return [
		{ label: 'wall time by file count (5 ms step)', unit: 's', points: byFiles.map((result, index) => ({ x: counts[index], xLabel: `${counts[index]} files`, y: result.wallMs / 1000, rss: result.rssMB })) },
		{ label: 'wall time by total size (stream step)', unit: 's', points: bySize.map((result, index) => ({ x: sizes[index], xLabel: `${sizes[index]} MiB`, y: result.wallMs / 1000, rss: result.rssMB })) },
	];
}

// A contender from Debian's packages; the package lists are fetched only if the install fails.
function aptInstall(name: string): void {
	execFileSync('sh', ['-c', `apt-get install -y ${name} >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y ${name} >/dev/null)`]);
}

async function main(): Promise<void> {
	let chart: string | undefined;
	execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' });
	if (spawnSync('parallel', ['--version']).status !== 0) {
		aptInstall('parallel');
	}

	const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
	const heading = `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, Node ${process.version}, ${quick ? 'quick mode, ' : ''}medians of ${runs} runs (the slowest contenders fewer). Reproduce: \`npm run bench${quick ? ' -- --quick' : ''}\`.`;
	report.push(heading, '');
	console.log(heading);
	try {
		const startupMs = startup();
		report.push(`Start-up floor (\`node -e ''\`): ${Math.round(startupMs)} ms.`, '');
		const s1 = wanted(1) || wanted(4) || wanted(6) ? latencyBound(startupMs) : undefined;
		if (wanted(2)) {
			childProcesses();
		}

		if (wanted(3)) {
			throughput();
		}

		if (wanted(4)) {
			warmCache(s1!);
		}

		if (wanted(5)) {
			chart = renderScalingChart(scaling(startupMs));
		}

		if (wanted(6)) {
			await remoteCache(s1!);
		}
	} finally {
		rmSync(work, { recursive: true, force: true });
	}

	if (only) {
		return;
	}

	writeFileSync(path.join(__dirname, 'scaling.svg'), chart!);
	const markdown = report.join('\n');
	writeFileSync(path.join(__dirname, 'RESULTS.md'), `# flowcat benchmark results\n\n${markdown.replace('](bench/scaling.svg)', '](scaling.svg)')}`);
	const readmePath = path.join(root, 'README.md');
	const readme = readFileSync(readmePath, 'utf8');
	const start = '<!-- bench:start -->';
	const end = '<!-- bench:end -->';
	if (readme.includes(start)) {
		writeFileSync(readmePath, `${readme.slice(0, readme.indexOf(start) + start.length)}\n${markdown}\n${readme.slice(readme.indexOf(end))}`);
	}

}

main().catch((error: unknown) => {
	console.error(error);
	process.exitCode = 1;
});
