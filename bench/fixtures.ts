// Deterministic bench inputs, written to a temp dir (never committed).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// mulberry32: a small seeded generator, so every run sees the same files.
function createRandom(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let value = state;
		value = Math.imul(value ^ (value >>> 15), value | 1);
		value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
		return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
	};
}

const words = ['const', 'value', 'return', 'function', 'module', 'exports', 'require', 'items', 'total', 'price', 'format', 'amount', 'render', 'state', 'props', 'event'];

function text(random: () => number, bytes: number, header: string): string {
	let result = `${header}\n`;
	while (result.length < bytes) {
		let line = '';
		while (line.length < 60) {
			line += `${words[Math.floor(random() * words.length)]} `;
		}

		result += `${line.trimEnd()};\n`;
	}

	return result.slice(0, bytes - 1) + '\n';
}

// `count` source files of 2 to 8 KB, named so that sorting gives their order.
export function writeSmallFiles(dir: string, count: number, seed = 1): string[] {
	mkdirSync(dir, { recursive: true });
	const random = createRandom(seed);
	return Array.from({ length: count }, (_, index) => {
		const filePath = path.join(dir, `m${String(index).padStart(5, '0')}.js`);
		writeFileSync(filePath, text(random, 2048 + Math.floor(random() * 6144), `// module ${index}`));
		return filePath;
	});
}

// `count` files of `mebibytes` MiB each, from one block rotated per file (fast to write).
export function writeLargeFiles(dir: string, count: number, mebibytes: number): string[] {
	mkdirSync(dir, { recursive: true });
	const block = Buffer.from(text(createRandom(7), 1024 * 1024, '// block'));
	return Array.from({ length: count }, (_, index) => {
		const filePath = path.join(dir, `big${String(index).padStart(3, '0')}.txt`);
		const rotated = Buffer.concat([block.subarray(index * 4099 % block.length), block.subarray(0, index * 4099 % block.length)]);
		writeFileSync(filePath, Buffer.concat(Array.from({ length: mebibytes }, () => rotated)));
		return filePath;
	});
}
