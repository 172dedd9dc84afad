import path from 'node:path';
import { Readable } from 'node:stream';
import type File from 'vinyl';
import { invalidType } from './errors';
import { isVinyl, toNodeReadable, type SourceMap } from './vinyl';

// What a flow reads. Only a description: nothing is opened until the flow runs.
export type Input =
	| { type: 'buffer'; buffer: Buffer; file?: File; sourceMap?: SourceMap }
	| { type: 'stream'; stream: Readable; file?: File }
	| { type: 'file'; path: string };

export type InputValue = string | Buffer | NodeJS.ReadableStream | File;

export function createInput(value: unknown): Input {
	if (typeof value === 'string') {
		return { type: 'buffer', buffer: Buffer.from(value) };
	}

	if (Buffer.isBuffer(value)) {
		return { type: 'buffer', buffer: value };
	}

	if (isVinyl(value)) {
		if (value.isStream()) {
			return { type: 'stream', stream: toNodeReadable(value.contents), file: value };
		}

		// A null-contents file (a directory, or `read: false`) is an empty input.
		const buffer = value.isBuffer() ? value.contents : Buffer.alloc(0);
		return { type: 'buffer', buffer, file: value, sourceMap: value.sourceMap };
	}

	if (isReadableStream(value)) {
		return { type: 'stream', stream: toNodeReadable(value) };
	}

	throw invalidType('input', 'a string, a Buffer, a readable stream or a vinyl File', value);
}

export function createFileInput(filePath: unknown): Input {
	if (typeof filePath !== 'string' || filePath === '') {
		throw invalidType('path', 'a non-empty string', filePath);
	}

	return { type: 'file', path: path.resolve(filePath) };
}

// The absolute path that identifies the input, when it has one.
export function inputPath(input: Input | undefined): string | undefined {
	if (!input) {
		return undefined;
	}

	return input.type === 'file' ? input.path : input.file?.path;
}

function isReadableStream(value: unknown): value is NodeJS.ReadableStream {
	const candidate = value as NodeJS.ReadableStream | null;
	return typeof candidate === 'object' && candidate !== null
		&& typeof candidate.pipe === 'function' && typeof candidate.on === 'function'
		&& (candidate instanceof Readable || Symbol.asyncIterator in candidate);
}
