// The runner alone: every module of examples/app through a function, a stream and a child
// process, in parallel, written to stdout in order between a header and a footer.
// Run: npx tsx examples/runner.ts
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { createGzip, createGunzip } from 'node:zlib';
import { concat, Flow } from '../lib/index';

const sourceDir = path.join(__dirname, 'app/src');
const files = readdirSync(sourceDir, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.js')).sort();

const flows = files.map((name) => new Flow([
	(text: string) => `// ${name}\n${text.trim()}\n`, // a sync function
	() => createGzip(), // byte streams, piped without buffering
	() => createGunzip(),
	() => spawn('tr', ['a-z', 'A-Z']), // a child process: stdin → stdout
]).inputFile(path.join(sourceDir, name)));

concat(process.stdout, [
	(out) => {
		out.write(`/* ${files.length} modules */\n`);
	},
	...flows,
	(out) => {
		out.write('/* end */\n');
	},
], { limit: 4 }).then((summary) => {
	console.error(`wrote ${summary.bytes} bytes from ${summary.flows} flows`);
}, (error: Error) => {
	console.error(error.message);
	process.exitCode = 1;
});
