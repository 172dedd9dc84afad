// flowcat's gulp plugin. Usage: plugin.cjs <sleep5|none> <srcDir> <outFile> [--cache=dir]
const path = require('node:path');
const { pipeline } = require('node:stream/promises');
const vfs = require('vinyl-fs');
const { concatFlows } = require('../../dist/index.js');
const { parseArgs, sleep } = require('./common.cjs');

const { positional: [mode, srcDir, outFile], flags } = parseArgs(process.argv.slice(2));
const steps = mode === 'sleep5' ? [async (text) => {
	await sleep(5);
	return text;
}] : [];
let hits = 0;
const plugin = concatFlows(path.basename(outFile), { steps, key: `bench-${mode}`, cache: flags.cache ? { dir: flags.cache } : undefined, log: false });
plugin.on('hit', () => {
	hits += 1;
});
pipeline(vfs.src('*', { cwd: srcDir, encoding: false }), plugin, vfs.dest(path.dirname(outFile), { encoding: false }))
	.then(() => console.log(JSON.stringify({ hits })), (error) => {
		console.error(error);
		process.exitCode = 1;
	});
