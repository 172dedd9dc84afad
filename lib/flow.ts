import { EventEmitter } from 'node:events';
import path from 'node:path';
import { Writable } from 'node:stream';
import { runChain, type ChainResult, type ChainSink } from './chain';
import { invalidType } from './errors';
import { createFileInput, createInput, inputPath, type Input, type InputValue } from './input';
import { describeSteps, type Step, type StepSpec } from './steps';

export interface FlowOptions {
	/** The flow's identity for the cache. Default: a digest of the steps' source text. */
	key?: string;
	/** How messages name the flow when its input has no path. */
	name?: string;
}

export type FlowOutput = NodeJS.WritableStream | ((result: string) => void);

export interface FlowRunOptions {
	signal?: AbortSignal;
}

// The runner's ways in: the flow's input, and running it into a sink. Symbols, so they stay
// out of the public API.
export const executeFlow = Symbol('flowcat.executeFlow');
export const flowInput = Symbol('flowcat.flowInput');

export interface ExecuteOptions {
	/** How errors name the flow, when the runner knows it better (its place in the list). */
	label?: () => string;
	alwaysEmitError?: boolean;
	/** The input as the runner already read it (for a digest), instead of reading it again. */
	input?: Input;
}

// One input piped through an ordered chain of steps, created lazily when the flow runs.
export class Flow extends EventEmitter {
	readonly name?: string;
	readonly steps: readonly StepSpec[];
	private readonly givenKey?: string;
	private source?: Input;
	private target?: FlowOutput;
	private streamConsumed = false;

	constructor(steps: Step[], options: FlowOptions = {}) {
		super();
		if (typeof options !== 'object' || options === null) {
			throw invalidType('options', 'an object', options);
		}

		if (options.key !== undefined && typeof options.key !== 'string') {
			throw invalidType('key', 'a string', options.key);
		}

		if (options.name !== undefined && typeof options.name !== 'string') {
			throw invalidType('name', 'a string', options.name);
		}

		this.steps = describeSteps(steps);
		this.givenKey = options.key;
		this.name = options.name;
	}

	/** The key given in the options, if any (the cache derives one otherwise). */
	get key(): string | undefined {
		return this.givenKey;
	}

	/** The input: a string or Buffer (the contents), a readable byte stream, or a vinyl File. */
	input(value: InputValue): this {
		this.setSource(createInput(value));
		return this;
	}

	/** The file at `filePath`, opened only when the flow runs. */
	inputFile(filePath: string): this {
		this.setSource(createFileInput(filePath));
		return this;
	}

	/** Where `.exec()` sends the output: a byte Writable, or a function given the whole output as a string. */
	output(target: FlowOutput): this {
		const isWritable = typeof (target as NodeJS.WritableStream | null)?.write === 'function';
		if (typeof target !== 'function' && !isWritable) {
			throw invalidType('output', 'a writable stream or a function', target);
		}

		this.target = target;
		return this;
	}

	/** What the input is: 'buffer' (in memory), 'stream' or 'file' (read when the flow runs). */
	get inputKind(): Input['type'] | undefined {
		return this.source?.type;
	}

	/** The input's absolute path, when it has one. */
	get path(): string | undefined {
		return inputPath(this.source);
	}

	/** Starts the flow, sending its output to `.output()`; listen for `done` and `error`. */
	exec(): this {
		const target = this.target;
		const collected = typeof target === 'function' ? collectBuffer() : undefined;
		const sink = collected?.sink ?? (target as Writable | undefined) ?? discard();
		// As with any EventEmitter, an error nobody listens for is thrown (here: unhandled).
		this[executeFlow](sink, new AbortController().signal, { alwaysEmitError: true })
			.then(() => {
				if (collected) {
					(target as (result: string) => void)(collected.buffer().toString('utf8'));
				}
			}, () => undefined);
		return this;
	}

	/** Runs the flow and resolves with its whole output (also sent to `.output()` if set). */
	async run(options: FlowRunOptions = {}): Promise<Buffer> {
		let collected: ReturnType<typeof collectBuffer> | undefined;
		const result = await this[executeFlow](() => (collected = collectBuffer()).sink, options.signal ?? new AbortController().signal);
		const buffer = result.buffer ?? collected!.buffer();
		if (typeof this.target === 'function') {
			this.target(buffer.toString('utf8'));
		} else if (this.target) {
			const target = this.target as Writable;
			target.end(buffer);
		}

		return buffer;
	}

	/** How messages name this flow: its input path relative to cwd, else its name. */
	label(fallback = 'unnamed flow'): string {
		const filePath = this.path;
		if (filePath) {
			const cwd = this.source?.type === 'buffer' || this.source?.type === 'stream' ? this.source.file?.cwd : undefined;
			return path.relative(cwd ?? process.cwd(), filePath) || filePath;
		}

		return this.name ?? fallback;
	}

	get [flowInput](): Input {
		return this.source ?? { type: 'buffer', buffer: Buffer.alloc(0) };
	}

	async [executeFlow](sink: ChainSink, signal: AbortSignal, options: ExecuteOptions = {}): Promise<ChainResult> {
		const started = performance.now();
		this.emit('exec');
		try {
			const result = await runChain(options.input ?? this.takeSource(), this.steps, sink, {
				signal,
				label: options.label ?? (() => this.label()),
				fallbackPath: () => this.path ?? this.name ?? 'flow-input',
			});
			// Thousands of flows in a run, most with no listener: no event object for nobody.
			if (this.listenerCount('done') > 0) {
				this.emit('done', { path: this.path, durationMs: performance.now() - started });
			}

			return result;
		} catch (error) {
			if (options.alwaysEmitError || this.listenerCount('error') > 0) {
				queueMicrotask(() => this.emit('error', error));
			}

			throw error;
		}
	}

	private takeSource(): Input {
		const source = this[flowInput];
		if (source.type === 'stream') {
			if (this.streamConsumed) {
				throw new Error(`The input stream of ${this.label()} was already consumed: a flow over a stream runs once`);
			}

			this.streamConsumed = true;
		}

		return source;
	}

	private setSource(source: Input): void {
		if (this.source) {
			throw new Error(`The input of ${this.label()} is already set: call .input() or .inputFile() once`);
		}

		this.source = source;
	}
}

/** The same class: `Task` is the name some users know it by. */
export const Task = Flow;
export type Task = Flow;

function collectBuffer(): { sink: Writable; buffer: () => Buffer } {
	const chunks: Buffer[] = [];
	const sink = new Writable({
		write(chunk: Buffer, _encoding, callback) {
			chunks.push(chunk);
			callback();
		},
	});
	return { sink, buffer: () => Buffer.concat(chunks) };
}

function discard(): Writable {
	return new Writable({
		write(_chunk, _encoding, callback) {
			callback();
		},
	});
}
