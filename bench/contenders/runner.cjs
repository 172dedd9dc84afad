// flowcat's runner. Usage: runner.cjs <sleep5|none|shell|stream> <srcDir> <outFile> [--cache=dir [--remote=url]] [--early] [--separator] [--ttfb] [--limit=16]
const { spawn } = require('node:child_process');
const { createWriteStream } = require('node:fs');
const { PassThrough, Transform } = require('node:stream');
const { concat, Flow } = require('../../dist/index.js');
const { listFiles, parseArgs, sleep } = require('./common.cjs');

const { positional: [mode, srcDir, outFile], flags } = parseArgs(process.argv.slice(2));
const stepsByMode = {
	sleep5: [async (text) => {
		await sleep(5);
		return text;
	}],
	none: [],
	shell: [() => spawn('sh', ['-c', 'sleep 0.02; tr a-z A-Z'])],
	stream: [() => new PassThrough()],
};

const newline = Buffer.from('\n');
const separator = (out) => {
	out.write(newline);
};

const flows = listFiles(srcDir).map((file) => new Flow(stepsByMode[mode], { key: `bench-${mode}` }).inputFile(file));
const items = flags.separator ? flows.flatMap((flow, index) => (index === 0 ? [flow] : [separator, flow])) : flows;
const file = createWriteStream(outFile, { highWaterMark: 1024 * 1024 });
let ttfbMs;
// Notes when the first byte reaches the output (time since the process started).
const output = flags.ttfb ? new Transform({
	transform(chunk, _encoding, callback) {
		ttfbMs ??= performance.now();
		callback(null, chunk);
	},
}) : file;
if (flags.ttfb) {
	output.pipe(file);
}

concat(output, items, {
	limit: Number(flags.limit ?? 16),
	cache: flags.cache ? { dir: flags.cache, remote: flags.remote ? { url: flags.remote } : false } : undefined,
	early: Boolean(flags.early),
}).then(async (summary) => {
	if (flags.ttfb) {
		await new Promise((resolve) => file.on('finish', resolve));
	}

	console.log(JSON.stringify({ hits: summary.hits, misses: summary.misses, ttfbMs }));
}, (error) => {
	console.error(error);
	process.exitCode = 1;
});
