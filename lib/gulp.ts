import { Transform } from 'node:stream';
import type File from 'vinyl';
import type { Cache, CacheOptions } from './cache/cache';
import { VinylRun } from './concat-to-vinyl';
import { AbortError, FlowcatError, invalidType, toError } from './errors';
import { Flow } from './flow';
import { Progress } from './progress';
import type { RunItem } from './run';
import { describeSteps, type Step } from './steps';
import type { Writer } from './writer';

export interface ConcatFlowsOptions {
	/** The steps each file goes through, or a function giving them for a file. No steps: plain concatenation. */
	steps?: Step[] | ((file: File) => Step[]);
	/** Written before the first file. */
	header?: string | Writer;
	/** Written between files. Default: '\n', as gulp-concat does. */
	separator?: string;
	/** Written after the last file. */
	footer?: string | Writer;
	/** How many flows run at once. Default: 16. */
	limit?: number;
	cache?: Cache | CacheOptions;
	/** The flows' identity for the cache; set it when a step's options or version matter. */
	key?: string;
	/** Log a summary line (and progress on a terminal) in gulp's log style. Default: true. */
	log?: boolean;
	signal?: AbortSignal;
	/** How many bytes of finished outputs to hold in memory before using temp files. */
	maxMemoryBytes?: number;
}

const pluginName = 'flowcat';
// With a cache, files start in batches: looking each one up as it arrives, in between
// vinyl-fs's reads, took up to twice the main-thread time of looking up a few dozen in a row
// (1,000 cached files: 529 against 476 ms). A file waits at most `batchWaitMs` for the rest of
// its batch: longer waits (64 files, 20 ms) left flows with 5 ms steps idle and cost cold runs
// 20 ms. Without a cache a file costs little to start, and one that waits leaves a slot idle.
const batchFilesWithCache = 32;
const batchWaitMs = 5;

// A gulp plugin: one flow per incoming vinyl file, run in parallel; once the input ends, one
// file named `fileName` with every flow's output in arrival order. Emits `hit` and `miss`.
export function concatFlows(fileName: string, options: ConcatFlowsOptions = {}): Transform {
	if (typeof fileName !== 'string' || fileName === '') {
		throw invalidType('fileName', 'a non-empty string, the name of the concatenated file', fileName);
	}

	const { steps = [], header, separator = '\n', footer, key, log = true, ...runOptions } = checkOptions(options);
	const separatorBytes = Buffer.from(separator);
	const batchFiles = runOptions.cache ? batchFilesWithCache : 1;
	let run: VinylRun | undefined;
	let finishing = false;
	let progress: Progress | undefined;
	let files = 0;
	let hits = 0;
	let misses = 0;

	let waiting: File[] = [];
	let batchTimer: NodeJS.Timeout | undefined;
	// Flows start as files arrive (a batch at a time), so they overlap with reading the rest.
	// Returns the error of a file whose flow could not be made (its steps function threw).
	const startWaiting = (): Error | undefined => {
		clearTimeout(batchTimer);
		batchTimer = undefined;
		const batch = waiting;
		waiting = [];
		try {
			for (const file of batch) {
				addFile(file);
			}
		} catch (error) {
			return toPluginError(error);
		}

		return undefined;
	};

	// A steps function that throws or gives no valid steps fails the stream, naming the file
	// (or its place in the stream: a vinyl file made in memory may have no path).
	const createFlow = (file: File): Flow => {
		try {
			return new Flow(typeof steps === 'function' ? steps(file) : steps, { key }).input(file);
		} catch (cause) {
			const error = toError(cause);
			const name = file.path ? file.relative : `file ${files + 1} (no path)`;
			throw new FlowcatError(`The steps function failed for ${name}: ${error.message}`, { code: 'FLOWCAT_STEP_FAILED', path: name, cause: error });
		}
	};

	const addFile = (file: File) => {
		if (run) {
			if (separator !== '') {
				run.add(separatorBytes);
			}
		} else {
			progress = log ? new Progress(pluginName) : undefined;
			run = new VinylRun(fileName, { ...runOptions, cwd: file.cwd, base: file.base, buffer: !file.isStream() }, {
				onFlowSettled: (settled, total) => progress?.update(settled, total),
			});
			if (header !== undefined) {
				run.add(toItem(header));
			}
		}

		const flow = createFlow(file);
		if (runOptions.cache) {
			flow.on('hit', () => {
				hits += 1;
				stream.emit('hit', file);
			});
			flow.on('miss', () => {
				misses += 1;
				stream.emit('miss', file);
			});
		}

		run.add(flow);
		files += 1;
	};

	const stream: Transform = new Transform({
		objectMode: true,
		transform(file: File, _encoding, callback) {
			// Directories and files read with `read: false` have nothing to concatenate.
			if (file.isNull()) {
				callback();
				return;
			}

			waiting.push(file);
			if (waiting.length < batchFiles) {
				batchTimer ??= setTimeout(() => {
					const error = startWaiting();
					if (error) {
						stream.destroy(error);
					}
				}, batchWaitMs);
				callback();
				return;
			}

			callback(startWaiting());
		},
		flush(callback) {
			const error = startWaiting();
			if (error) {
				callback(error);
				return;
			}

			if (!run) {
				callback();
				return;
			}

			if (footer !== undefined) {
				run.add(toItem(footer));
			}

			finishing = true;
			run.finish().then((output) => {
				const cacheNote = runOptions.cache ? ` (${hits} ${hits === 1 ? 'hit' : 'hits'}, ${misses} ${misses === 1 ? 'miss' : 'misses'})` : '';
				progress?.finish(`${fileName} from ${files} ${files === 1 ? 'file' : 'files'}${cacheNote}`);
				callback(null, output);
			}, (error: unknown) => {
				progress?.clear();
				callback(toPluginError(error));
			});
		},
		destroy(error, callback) {
			clearTimeout(batchTimer);
			// Destroyed before the end (an error upstream, an error of ours): stop what runs.
			if (run && !finishing) {
				run.abort(error ?? new AbortError('The flowcat stream was destroyed'));
				run.finish().catch(() => undefined);
			}

			callback(error);
		},
	});

	return stream;
}

// A header or footer: a writer as it is, a string as its bytes.
function toItem(value: string | Writer): RunItem {
	return typeof value === 'function' ? value : Buffer.from(value);
}

function checkOptions(options: ConcatFlowsOptions): ConcatFlowsOptions {
	if (typeof options !== 'object' || options === null) {
		throw invalidType('options', 'an object', options);
	}

	const { steps, header, separator, footer } = options;
	if (steps !== undefined && !Array.isArray(steps) && typeof steps !== 'function') {
		throw invalidType('steps', 'an array of steps or a function of the file returning one', steps);
	}

	if (Array.isArray(steps)) {
		describeSteps(steps);
	}

	for (const [name, value] of Object.entries({ header, footer })) {
		if (value !== undefined && typeof value !== 'string' && typeof value !== 'function') {
			throw invalidType(name, 'a string or a writer function', value);
		}
	}

	if (separator !== undefined && typeof separator !== 'string') {
		throw invalidType('separator', 'a string', separator);
	}

	return options;
}

// Errors leave the plugin prefixed with its name, as gulp's guidelines ask, keeping the
// original's details and cause.
function toPluginError(cause: unknown): Error {
	const error = toError(cause);
	const details = error as Partial<FlowcatError>;
	return Object.assign(new FlowcatError(`${pluginName}: ${error.message}`, {
		code: details.code ?? 'FLOWCAT_STEP_FAILED',
		path: details.path,
		step: details.step,
		stepIndex: details.stepIndex,
		stepKind: details.stepKind,
		cause: error.cause ?? error,
	}), { plugin: pluginName });
}
