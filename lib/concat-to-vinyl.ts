import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import File from 'vinyl';
import { invalidType } from './errors';
import { Flow, flowInput } from './flow';
import type { ConcatOptions } from './options';
import { runConcat, type Item, type RunHooks } from './runner';
import { combineSourceMaps, type MappedPart } from './source-map';

export interface ConcatToVinylOptions extends ConcatOptions {
	/** The file's cwd. Default: process.cwd(). */
	cwd?: string;
	/** The file's base; its path is `base/fileName`. Default: cwd. */
	base?: string;
	/** Buffer contents (true), or a stream that flows once every flow has succeeded (false). Default: true. */
	buffer?: boolean;
	/** Give the file a combined `sourceMap`. Default: when an input vinyl file has one. */
	sourceMap?: boolean;
}

// The runner's output as one vinyl File, for vinyl stream composition outside gulp.
export async function concatToVinyl(fileName: string, items: Item[], options: ConcatToVinylOptions = {}): Promise<File> {
	return createVinyl(fileName, items, options, {});
}

// concatToVinyl with the runner's hooks, for the gulp plugin's progress line.
export async function createVinyl(fileName: string, items: Item[], options: ConcatToVinylOptions, hooks: Pick<RunHooks, 'onFlowSettled'>): Promise<File> {
	if (typeof fileName !== 'string' || fileName === '') {
		throw invalidType('fileName', 'a non-empty string', fileName);
	}

	const { cwd = process.cwd(), base = cwd, buffer = true, sourceMap, ...concatOptions } = options;
	const file = new File({ cwd, base, path: path.resolve(base, fileName) });
	if (!buffer) {
		file.contents = await startStreaming(items, concatOptions, hooks);
		return file;
	}

	const chunks: Buffer[] = [];
	const collector = new Writable({
		write(chunk: Buffer, _encoding, callback) {
			chunks.push(chunk);
			callback();
		},
	});
	const parts: MappedPart[] = [];
	const useSourceMaps = sourceMap ?? items.some((item) => item instanceof Flow && Boolean(inputVinyl(item)?.sourceMap));
	const onItemWritten: RunHooks['onItemWritten'] = (index, bytes, itemSourceMap) => {
		parts.push({ bytes, source: mapSource(items[index], base, itemSourceMap !== undefined), sourceMap: itemSourceMap });
	};
	await runConcat(collector, items, { ...concatOptions, end: true }, useSourceMaps ? { ...hooks, onItemWritten } : hooks);
	file.contents = Buffer.concat(chunks);
	if (useSourceMaps) {
		file.sourceMap = combineSourceMaps(fileName.split(path.sep).join('/'), file.contents, parts);
	}

	return file;
}

// The same File, as a one-file object stream; the run starts when the stream is first read.
export function concatToVinylStream(fileName: string, items: Item[], options: ConcatToVinylOptions = {}): Readable {
	let started = false;
	return new Readable({
		objectMode: true,
		read() {
			if (started) {
				return;
			}

			started = true;
			concatToVinyl(fileName, items, options).then((file) => {
				this.push(file);
				this.push(null);
			}, (error: unknown) => this.destroy(error as Error));
		},
	});
}

// Resolves with the contents stream once every flow has succeeded; the output phase then
// writes into it as it is read. A later failure destroys the stream with the error.
function startStreaming(items: Item[], options: ConcatOptions, hooks: RunHooks): Promise<PassThrough> {
	const contents = new PassThrough();
	return new Promise((resolve, reject) => {
		runConcat(contents, items, { ...options, end: true }, { ...hooks, onFlowsDone: () => resolve(contents) }).catch((error: unknown) => {
			contents.destroy(error as Error);
			reject(error);
		});
	});
}

function inputVinyl(flow: Flow): File | undefined {
	const input = flow[flowInput];
	return input.type === 'file' ? undefined : input.file;
}

// Where a part's text comes from, for the map: its own map's sources, or its file when no
// step changed the text; null for writers and for text a step rewrote without a map.
function mapSource(item: Item, base: string, hasMap: boolean): string | null {
	if (!(item instanceof Flow) || (!hasMap && item.steps.length > 0)) {
		return null;
	}

	const vinyl = inputVinyl(item);
	const relative = vinyl ? vinyl.relative : item.path && path.relative(base, item.path);
	return relative ? relative.split(path.sep).join('/') : null;
}
