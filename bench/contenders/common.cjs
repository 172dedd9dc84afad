// Shared by the bench contenders: argument parsing, the input list, and the 5 ms step.
const { readdirSync } = require('node:fs');
const path = require('node:path');

function parseArgs(argv) {
	const positional = [];
	const flags = {};
	for (const argument of argv) {
		const match = /^--([^=]+)(?:=(.*))?$/.exec(argument);
		if (match) {
			flags[match[1]] = match[2] ?? true;
		} else {
			positional.push(argument);
		}
	}

	return { positional, flags };
}

function listFiles(dir) {
	return readdirSync(dir).sort().map((name) => path.join(dir, name));
}

// Stands for a compiler or a network call: about 5 ms of waiting per file.
function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

module.exports = { parseArgs, listFiles, sleep };
