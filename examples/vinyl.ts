// concatToVinylStream outside gulp: one vinyl file from flows and writers, written by vinyl-fs.
// Run: npx tsx examples/vinyl.ts  (writes examples/dist/modules.txt)
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import vfs from 'vinyl-fs';
import { concatToVinylStream, Flow } from '../lib/index';

const names = ['index.js', 'lib/math.js', 'lib/format.js'];
const items = [
	(out: NodeJS.WritableStream) => {
		out.write('Line counts\n');
	},
	...names.map((name) => new Flow([(text: string) => `${name}: ${text.split('\n').length} lines\n`])
		.inputFile(path.join(__dirname, 'app/src', name))),
];

pipeline(
	concatToVinylStream('modules.txt', items, { cwd: __dirname, base: __dirname }),
	vfs.dest(path.join(__dirname, 'dist')),
).then(() => console.log('wrote examples/dist/modules.txt'), (error: Error) => {
	console.error(error.message);
	process.exitCode = 1;
});
