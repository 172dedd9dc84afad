import path from 'node:path';
import { Readable } from 'node:stream';
import type File from 'vinyl';
import { loadVinyl } from './lazy-modules';

export type SourceMap = NonNullable<File['sourceMap']>;

// Vinyl's own test (File.isVinyl), without loading vinyl for runs that have no vinyl file.
export function isVinyl(value: unknown): value is File {
	return (value as { _isVinyl?: unknown } | null)?._isVinyl === true;
}

// vinyl-fs 4 gives streamx streams as contents; Node's pipeline wants a Node Readable.
export function toNodeReadable(stream: NodeJS.ReadableStream): Readable {
	return stream instanceof Readable ? stream : Readable.from(stream as AsyncIterable<Buffer>, { objectMode: false });
}

// A vinyl file for a gulp-plugin step: a clone of the input's file when there is one
// (keeping path, base, stat and history), otherwise a fresh file named after the flow.
export function createStepFile(contents: Buffer, template: File | undefined, fallbackPath: string, sourceMap: SourceMap | undefined): File {
	let file: File;
	if (template) {
		file = template.clone({ contents: false, deep: false });
		file.contents = contents;
	} else {
		const absolute = path.resolve(fallbackPath);
		const Vinyl = loadVinyl();
		file = new Vinyl({ cwd: process.cwd(), base: path.dirname(absolute), path: absolute, contents });
	}

	if (sourceMap === undefined) {
		delete file.sourceMap;
	} else {
		file.sourceMap = sourceMap;
	}

	return file;
}
