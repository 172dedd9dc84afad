// The least any Node program pays to concatenate files: one reused 1 MiB buffer, synchronous
// reads and writes, nothing else. Usage: node-copy.cjs <srcDir> <outFile>
const { closeSync, openSync, readSync, writeSync } = require('node:fs');
const { listFiles } = require('./common.cjs');

const [srcDir, outFile] = process.argv.slice(2);
const buffer = Buffer.allocUnsafe(1024 * 1024);
const output = openSync(outFile, 'w');
for (const file of listFiles(srcDir)) {
	const input = openSync(file, 'r');
	for (let bytesRead; (bytesRead = readSync(input, buffer, 0, buffer.length, null)) > 0;) {
		for (let written = 0; written < bytesRead;) {
			written += writeSync(output, buffer, written, bytesRead - written);
		}
	}

	closeSync(input);
}

closeSync(output);
