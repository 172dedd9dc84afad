import { Transform } from 'node:stream';
import type File from 'vinyl';
import type { Cache, CacheOptions } from './cache/cache';
import { createVinyl } from './concat-to-vinyl';
import { FlowcatError, invalidType, toError } from './errors';
import { Flow } from './flow';
import { Progress } from './progress';
import type { Item } from './runner';
import type { Step } from './steps';
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

// A gulp plugin: one flow per incoming vinyl file, run in parallel; once the input ends, one
// file named `fileName` with every flow's output in arrival order. Emits `hit` and `miss`.
export function concatFlows(fileName: string, options: ConcatFlowsOptions = {}): Transform {
	if (typeof fileName !== 'string' || fileName === '') {
		throw invalidType('fileName', 'a non-empty string, the name of the concatenated file', fileName);
	}

	const { steps = [], header, separator = '\n', footer, key, log = true, ...runOptions } = checkOptions(options);
	const files: File[] = [];
	const stream: Transform = new Transform({
		objectMode: true,
		transform(file: File, _encoding, callback) {
			// Directories and files read with `read: false` have nothing to concatenate.
			if (!file.isNull()) {
				files.push(file);
			}

			callback();
		},
		flush(callback) {
			if (files.length === 0) {
				callback();
				return;
			}

			build().then((output) => callback(null, output), (error: unknown) => callback(toPluginError(error)));
		},
	});

	async function build(): Promise<File> {
		let hits = 0;
		let misses = 0;
		const flows = files.map((file) => {
			const flow = new Flow(typeof steps === 'function' ? steps(file) : steps, { key, name: file.relative }).input(file);
			flow.on('hit', () => {
				hits += 1;
				stream.emit('hit', file);
			});
			flow.on('miss', () => {
				misses += 1;
				stream.emit('miss', file);
			});
			return flow;
		});
		const separatorWriter = toWriter(separator);
		const items: Item[] = [
			...(header === undefined ? [] : [toWriter(header)]),
			...flows.flatMap((flow, index) => (index === 0 || separator === '' ? [flow] : [separatorWriter, flow])),
			...(footer === undefined ? [] : [toWriter(footer)]),
		];
		const [first] = files;
		const progress = log ? new Progress(pluginName) : undefined;
		try {
			const output = await createVinyl(fileName, items, {
				...runOptions,
				cwd: first.cwd,
				base: first.base,
				buffer: !first.isStream(),
				sourceMap: files.some((file) => file.sourceMap !== undefined),
			}, { onFlowSettled: (settled, total) => progress?.update(settled, total) });
			const cacheNote = runOptions.cache ? ` (${hits} ${hits === 1 ? 'hit' : 'hits'}, ${misses} ${misses === 1 ? 'miss' : 'misses'})` : '';
			progress?.finish(`${fileName} from ${files.length} ${files.length === 1 ? 'file' : 'files'}${cacheNote}`);
			return output;
		} catch (error) {
			progress?.clear();
			throw error;
		}
	}

	return stream;
}

function toWriter(value: string | Writer): Writer {
	if (typeof value === 'function') {
		return value;
	}

	const bytes = Buffer.from(value);
	return (out) => {
		out.write(bytes);
	};
}

function checkOptions(options: ConcatFlowsOptions): ConcatFlowsOptions {
	if (typeof options !== 'object' || options === null) {
		throw invalidType('options', 'an object', options);
	}

	const { steps, header, separator, footer } = options;
	if (steps !== undefined && !Array.isArray(steps) && typeof steps !== 'function') {
		throw invalidType('steps', 'an array of steps or a function of the file returning one', steps);
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
