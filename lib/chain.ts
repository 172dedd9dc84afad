import type { ChildProcess } from 'node:child_process';
import { createReadStream, statSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type File from 'vinyl';
import { chunkBytes } from './buffered-file';
import { isThenable } from './check';
import { ChildProcessStream, isChildProcess } from './child-process';
import { onAbort } from './abort-listeners';
import { AbortError, describeValue, FlowcatError, inputError, outputError, toError } from './errors';
import type { Input } from './input';
import { readSmallFile } from './read-small-file';
import { stepLabel, type CallbackStep, type FunctionStep, type StepSpec } from './steps';
import { createStepFile, toNodeReadable, type SourceMap } from './vinyl';

export interface ChainOptions {
	signal: AbortSignal;
	/** How errors name the flow: its input path relative to cwd, or its name (computed only for an error). */
	label: () => string;
	/** The path given to vinyl files made for gulp-plugin steps when the input has none. */
	fallbackPath: () => string;
}

export interface ChainResult {
	/** The output's source map, when the input had one and every step kept it up to date. */
	sourceMap?: SourceMap;
	/** The whole output, when the sink was a function that was not needed (see ChainSink). */
	buffer?: Buffer;
}

// Where the output goes: a stream, or a function that opens one only if the output is a
// stream. An output that ends whole in memory is then handed back as `buffer`, with no stream
// made for it (one per flow, thousands of flows).
export type ChainSink = Writable | (() => Writable);

interface Stage {
	stream: NodeJS.ReadableStream | NodeJS.WritableStream;
	spec?: StepSpec;
	kind?: string;
}

// Between steps the value is either whole (a Buffer) or a run of connected streams not yet
// started: bytes, or vinyl files for gulp plugins. Streams are only buffered at a change of kind.
type State =
	| { type: 'buffer'; buffer: Buffer; file?: File; sourceMap?: SourceMap }
	| { type: 'bytes'; stages: Stage[]; file?: File }
	| { type: 'files'; stages: Stage[] };

// Runs one input through its steps into `sink`, resolving once `sink` has finished.
// The common case (bytes in memory, function steps) awaits nothing but the steps themselves.
export async function runChain(input: Input, specs: readonly StepSpec[], sink: ChainSink, options: ChainOptions): Promise<ChainResult> {
	const run = new ChainRun(options);
	try {
		let state: State = input.type === 'buffer' ? { type: 'buffer', buffer: input.buffer, file: input.file, sourceMap: input.sourceMap } : await run.start(input, specs[0]);
		for (const spec of specs) {
			state = await run.apply(state, spec);
		}

		if (state.type === 'buffer' && typeof sink === 'function') {
			return { buffer: state.buffer, sourceMap: state.sourceMap };
		}

		return await run.deliver(state, typeof sink === 'function' ? sink() : sink);
	} finally {
		const stopping = run.stopChildren();
		if (stopping) {
			await stopping;
		}
	}
}

class ChainRun {
	private readonly children: ChildProcess[] = [];
	private readonly childStreams: ChildProcessStream[] = [];
	private readonly options: ChainOptions;

	constructor(options: ChainOptions) {
		this.options = options;
	}

	private get label(): string {
		return this.options.label();
	}

	async start(input: Exclude<Input, { type: 'buffer' }>, firstStep: StepSpec | undefined): Promise<State> {
		if (input.type === 'stream') {
			return { type: 'bytes', stages: [{ stream: input.stream }], file: input.file };
		}

		// A function step wants the whole file: one read beats a stream of chunks.
		if (firstStep && firstStep.shape !== 'factory') {
			try {
				return { type: 'buffer', buffer: await readSmallFile(input.path, statSync(input.path).size) };
			} catch (error) {
				throw this.failure(error, undefined);
			}
		}

		return { type: 'bytes', stages: [{ stream: createReadStream(input.path, { highWaterMark: chunkBytes }) }] };
	}

	async apply(state: State, spec: StepSpec): Promise<State> {
		this.throwIfAborted();
		if (spec.shape !== 'factory') {
			const current = state.type === 'buffer' ? state : await this.toBuffer(state);
			const output = await this.callFunction(spec, current.buffer);
			// A function rewrites the text, so a source map it did not see no longer holds,
			// unless it gave its text back unchanged.
			const unchanged = output === current.buffer;
			return { type: 'buffer', buffer: output, file: current.file, sourceMap: unchanged ? current.sourceMap : undefined };
		}

		let value: unknown;
		try {
			value = (spec.run as () => unknown)();
		} catch (error) {
			throw this.stepError(spec, 'stream factory', error);
		}

		if (isChildProcess(value)) {
			this.children.push(value);
			let stream: ChildProcessStream;
			try {
				stream = new ChildProcessStream(value);
			} catch (error) {
				throw this.stepError(spec, 'child process', error);
			}

			this.childStreams.push(stream);

			const bytes = await this.toBytes(state);
			return { ...bytes, stages: [...bytes.stages, { stream, spec, kind: 'child process' }] };
		}

		if (isObjectModeStream(value)) {
			const files = await this.toFiles(state);
			return { type: 'files', stages: [...files.stages, { stream: value, spec, kind: 'gulp plugin' }] };
		}

		if (isByteStream(value)) {
			const bytes = await this.toBytes(state);
			return { ...bytes, stages: [...bytes.stages, { stream: value, spec, kind: 'stream' }] };
		}

		const reason = isThenable(value)
			? 'returned a Promise; a function step takes the input as its parameter, e.g. `async (text) => ...`'
			: `returned ${describeValue(value)}; expected a Transform or Duplex stream, a ChildProcess from spawn(), or an object-mode stream (a gulp plugin)`;
		const error = new TypeError(`${stepLabel(spec, 'factory')} failed for ${this.label}: ${reason}`);
		throw Object.assign(error, stepProperties(spec, 'factory', this.label));
	}

	async deliver(state: State, sink: Writable): Promise<ChainResult> {
		if (state.type === 'files') {
			return this.deliver(await this.fromFiles(state), sink);
		}

		if (state.type === 'bytes') {
			await this.pipe(state.stages, sink);
			return {};
		}

		sink.end(state.buffer);
		await finished(sink);
		return { sourceMap: state.sourceMap };
	}

	// Returns nothing when there is nothing to stop, so most flows await nothing here.
	stopChildren(): Promise<void> | undefined {
		if (this.children.length === 0 && this.childStreams.length === 0) {
			return undefined;
		}

		return this.stopStarted();
	}

	private async stopStarted(): Promise<void> {
		// A child whose stream never joined a pipeline (the flow failed first) is stopped through
		// its stream, which then closes quietly instead of erroring with nobody listening.
		await Promise.all(this.childStreams.filter((stream) => !stream.destroyed).map(async (stream) => {
			const closed = new Promise((resolve) => stream.once('close', resolve));
			stream.destroy();
			await closed;
		}));
		await Promise.all(this.children.map(async (child) => {
			if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
				const closed = new Promise((resolve) => child.once('close', resolve));
				child.kill('SIGKILL');
				await closed;
			}
		}));
	}

	private async toBuffer(state: State): Promise<Extract<State, { type: 'buffer' }>> {
		if (state.type === 'buffer') {
			return state;
		}

		if (state.type === 'files') {
			return this.toBuffer(await this.fromFiles(state));
		}

		const chunks: Buffer[] = [];
		await this.pipe(state.stages, new Writable({
			write(chunk: Buffer, _encoding, callback) {
				chunks.push(chunk);
				callback();
			},
		}));
		return { type: 'buffer', buffer: Buffer.concat(chunks), file: state.file };
	}

	private async toBytes(state: State): Promise<Extract<State, { type: 'bytes' }>> {
		if (state.type === 'bytes') {
			return state;
		}

		if (state.type === 'files') {
			return this.toBytes(await this.fromFiles(state));
		}

		return { type: 'bytes', stages: [{ stream: Readable.from([state.buffer], { objectMode: false }) }], file: state.file };
	}

	private async toFiles(state: State): Promise<Extract<State, { type: 'files' }>> {
		if (state.type === 'files') {
			return state;
		}

		const current = await this.toBuffer(state);
		const file = createStepFile(current.buffer, current.file, this.options.fallbackPath(), current.sourceMap);
		return { type: 'files', stages: [{ stream: Readable.from([file]) }] };
	}

	// The files a run of gulp plugins gave, back to bytes. A plugin may drop the file
	// (a filter): that is an empty output. More than one file has no single meaning.
	private async fromFiles(state: Extract<State, { type: 'files' }>): Promise<State> {
		const files: File[] = [];
		await this.pipe(state.stages, new Writable({
			objectMode: true,
			write(file: File, _encoding, callback) {
				files.push(file);
				callback();
			},
		}));
		const last = state.stages.at(-1)!;
		if (files.length > 1) {
			const error = new Error(`The plugin gave ${files.length} files (${files.map((file) => file.relative).join(', ')}); a flow's step must give one`);
			throw this.stepError(last.spec!, last.kind!, error);
		}

		const [file] = files;
		if (!file || file.isNull()) {
			return { type: 'buffer', buffer: Buffer.alloc(0), file };
		}

		if (file.isStream()) {
			return { type: 'bytes', stages: [{ stream: toNodeReadable(file.contents) }], file };
		}

		return { type: 'buffer', buffer: file.contents as Buffer, file, sourceMap: file.sourceMap };
	}

	private async pipe(stages: Stage[], destination: Writable): Promise<void> {
		let failed: { stage?: Stage; error: unknown } | undefined;
		const listeners = stages.map((stage) => {
			const listener = (error: unknown) => {
				failed ??= { stage, error };
			};

			stage.stream.on('error', listener);
			return listener;
		});
		try {
			const streams = [...stages.map((stage) => stage.stream), destination] as unknown as ReadonlyArray<NodeJS.ReadWriteStream>;
			await pipeline(streams, { signal: this.options.signal });
		} catch (error) {
			const stage = failed?.stage;
			if (stage?.spec) {
				throw this.stepError(stage.spec, stage.kind!, failed!.error);
			}

			// Not a step: the input (the first stage) or the destination.
			throw stage ? this.failure(failed!.error, undefined) : this.failure(error, destination);
		} finally {
			for (const [index, stage] of stages.entries()) {
				stage.stream.off('error', listeners[index]);
			}
		}
	}

	// Calls a function step with the text of `input`; text given back unchanged keeps the
	// bytes it came from, with no encoding (a step that leaves most files alone costs less).
	private async callFunction(spec: StepSpec, input: Buffer): Promise<Buffer> {
		const text = input.toString('utf8');
		let kind = spec.shape === 'callback' ? 'callback function' : 'sync function';
		let output: unknown;
		try {
			if (spec.shape === 'callback') {
				output = await this.untilAborted(callCallbackStep(spec, text));
			} else {
				output = (spec.run as FunctionStep)(text);
				if (isThenable(output)) {
					kind = 'promise function';
					output = await this.untilAborted(output);
				}
			}
		} catch (error) {
			throw this.stepError(spec, kind, error);
		}

		if (output === text) {
			return input;
		}

		if (typeof output === 'string') {
			return Buffer.from(output);
		}

		if (Buffer.isBuffer(output)) {
			return output;
		}

		const error = new TypeError(`${stepLabel(spec, kind)} failed for ${this.label}: returned ${describeValue(output)}; expected a string or a Buffer`);
		throw Object.assign(error, stepProperties(spec, kind, this.label));
	}

	private untilAborted<T>(promise: Promise<T>): Promise<T> {
		const { signal } = this.options;
		return new Promise<T>((resolve, reject) => {
			if (signal.aborted) {
				reject(new AbortError(signal.reason));
				return;
			}

			const unregister = onAbort(signal, () => reject(new AbortError(signal.reason)));
			promise.then((value) => {
				unregister();
				resolve(value);
			}, (error: unknown) => {
				unregister();
				reject(error);
			});
		});
	}

	private throwIfAborted(): void {
		if (this.options.signal.aborted) {
			throw new AbortError(this.options.signal.reason);
		}
	}

	private stepError(spec: StepSpec, kind: string, cause: unknown): Error {
		if (this.options.signal.aborted) {
			return new AbortError(this.options.signal.reason);
		}

		const error = toError(cause);
		return new FlowcatError(`${stepLabel(spec, kind)} failed for ${this.label}: ${error.message}`, {
			...stepProperties(spec, kind, this.label),
			cause: error,
		});
	}

	// An error outside the steps: reading the input, or writing to `destination`.
	private failure(cause: unknown, destination: Writable | undefined): Error {
		if (this.options.signal.aborted) {
			return new AbortError(this.options.signal.reason);
		}

		return destination ? outputError(this.label, cause) : inputError(this.label, cause);
	}
}

function stepProperties(spec: StepSpec, kind: string, label: string) {
	return { code: 'FLOWCAT_STEP_FAILED' as const, path: label, step: spec.name || undefined, stepIndex: spec.position, stepKind: kind };
}

function callCallbackStep(spec: StepSpec, input: string): Promise<unknown> {
	return new Promise((resolve, reject) => {
		let called = false;
		(spec.run as CallbackStep)(input, (error, output) => {
			if (called) {
				process.emitWarning(`${stepLabel(spec, 'callback function')} called done more than once; only the first call counts`, { code: 'FLOWCAT_DONE_TWICE' });
				return;
			}

			called = true;
			if (error) {
				reject(error);
			} else {
				resolve(output);
			}
		});
	});
}

function isStreamLike(value: unknown): value is NodeJS.ReadWriteStream {
	const candidate = value as NodeJS.ReadWriteStream | null;
	return typeof candidate === 'object' && candidate !== null
		&& typeof candidate.pipe === 'function' && typeof candidate.write === 'function' && typeof candidate.on === 'function';
}

function isObjectModeStream(value: unknown): value is NodeJS.ReadWriteStream {
	if (!isStreamLike(value)) {
		return false;
	}

	// streamx streams declare no mode; they count as byte streams, like any stream not
	// marked object-mode.
	// readable-stream 3 (through2 4) has no readableObjectMode getter, only the state.
	const node = value as Partial<Readable & Writable> & { _readableState?: { objectMode?: boolean }; _writableState?: { objectMode?: boolean } };
	return Boolean(node.readableObjectMode || node.writableObjectMode || node._readableState?.objectMode || node._writableState?.objectMode);
}

function isByteStream(value: unknown): value is NodeJS.ReadWriteStream {
	return isStreamLike(value) && !isObjectModeStream(value);
}
