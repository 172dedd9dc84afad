import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import type File from 'vinyl';
import { invalidType } from './errors';
import { Flow, flowInput } from './flow';
import { loadVinyl } from './lazy-modules';
import { resolveConcatOptions, type ConcatOptions } from './options';
import { Run, type Item, type RunHooks, type RunItem } from './run';
import { checkItems } from './runner';
import { combineSourceMaps, type MappedPart } from './source-map';
import type { SourceMap } from './vinyl';

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
	checkItems(items);
	const run = new VinylRun(fileName, options, {});
	for (const item of items) {
		run.add(item);
	}

	return run.finish();
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

// A run whose output becomes one vinyl file; items may be added while it runs.
export class VinylRun {
	private readonly file: File;
	private readonly run: Run;
	private readonly chunks: Buffer[] = [];
	private readonly base: string;
	// Each item's bytes and map, turned into a source map's parts only if one is wanted.
	private readonly written: Array<{ item: RunItem; bytes: number; sourceMap?: SourceMap }> = [];
	private readonly contents?: PassThrough;
	private readonly sourceMap?: boolean;
	private readonly flowsDone: Promise<void>;

	constructor(fileName: string, options: ConcatToVinylOptions, hooks: Pick<RunHooks, 'onFlowSettled'>) {
		if (typeof fileName !== 'string' || fileName === '') {
			throw invalidType('fileName', 'a non-empty string', fileName);
		}

		const { cwd = process.cwd(), base = cwd, buffer = true, sourceMap, ...concatOptions } = options;
		const Vinyl = loadVinyl();
		this.file = new Vinyl({ cwd, base, path: path.resolve(base, fileName) });
		this.sourceMap = sourceMap;
		this.base = base;
		let onFlowsDone!: () => void;
		this.flowsDone = new Promise((resolve) => {
			onFlowsDone = resolve;
		});
		const onItemWritten: RunHooks['onItemWritten'] = (item, bytes, itemSourceMap) => {
			this.written.push({ item, bytes, sourceMap: itemSourceMap });
		};

		this.contents = buffer ? undefined : new PassThrough();
		// Everything ends up in memory anyway: waiting for `drain` would only cost time.
		const output = this.contents ?? new Writable({
			highWaterMark: Number.MAX_SAFE_INTEGER,
			write: (chunk: Buffer, _encoding, callback) => {
				this.chunks.push(chunk);
				callback();
			},
			writev: (chunks, callback) => {
				for (const { chunk } of chunks) {
					this.chunks.push(chunk as Buffer);
				}

				callback();
			},
		});
		// Bytes in memory are seen only once all are there: each result is written as soon as it
		// and those before it are done (the `early` mode), leaving less to do after the last flow.
		const resolved = resolveConcatOptions(concatOptions);
		this.run = new Run(output, { ...resolved, end: true, early: resolved.early || buffer }, { ...hooks, onFlowsDone, onItemWritten: buffer && sourceMap !== false ? onItemWritten : undefined });
	}

	add(item: RunItem): void {
		this.run.add(item);
	}

	abort(reason: unknown): void {
		this.run.abort(reason);
	}

	async finish(): Promise<File> {
		const finished = this.run.finish();
		if (this.contents) {
			// The file goes out once every flow has succeeded; its stream is written as it is read.
			finished.catch((error: unknown) => this.contents!.destroy(error as Error));
			await Promise.race([this.flowsDone, finished]);
			this.file.contents = this.contents;
			return this.file;
		}

		await finished;
		this.file.contents = Buffer.concat(this.chunks);
		if (this.sourceMap ?? this.run.itemsAdded().some((item) => item instanceof Flow && Boolean(inputVinyl(item)?.sourceMap))) {
			const parts = this.written.map(({ item, bytes, sourceMap }): MappedPart => ({ bytes, source: mapSource(item, this.base, sourceMap !== undefined), sourceMap }));
			this.file.sourceMap = combineSourceMaps(this.file.relative.split(path.sep).join('/'), this.file.contents, parts);
		}

		return this.file;
	}
}

function inputVinyl(flow: Flow): File | undefined {
	const input = flow[flowInput];
	return input.type === 'file' ? undefined : input.file;
}

// Where a part's text comes from, for the map: its own map's sources, or its file when no
// step changed the text; null for writers and for text a step rewrote without a map.
function mapSource(item: RunItem, base: string, hasMap: boolean): string | null {
	if (!(item instanceof Flow) || (!hasMap && item.steps.length > 0)) {
		return null;
	}

	const vinyl = inputVinyl(item);
	const relative = vinyl ? vinyl.path && vinyl.relative : item.path && path.relative(base, item.path);
	return relative ? relative.split(path.sep).join('/') : null;
}
