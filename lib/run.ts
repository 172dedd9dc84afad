import { setMaxListeners } from 'node:events';
import { statSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import { onAbort } from './abort-listeners';
import { chunkBytes } from './buffered-file';
import { ChunkPool, copyFile } from './copy-file';
import { CacheSession } from './cache/session';
import type { ChainResult } from './chain';
import { AbortError, FlowcatError, inputError, isAbortError, outputError } from './errors';
import { executeFlow, Flow, flowInput } from './flow';
import type { ResolvedConcatOptions } from './options';
import { OutputGate } from './output-gate';
import { readSmallFile } from './read-small-file';
import { MemoryBudget, Spool, type Spooled } from './spool';
import { SpillFile } from './spill-file';
import { TempDir } from './temp-dir';
import type { SourceMap } from './vinyl';
import { WriterRunner, type Writer } from './writer';

export type Item = Flow | Writer;
// Inside flowcat a run also takes bytes to write as they are (the gulp plugin's separator).
export type RunItem = Item | Buffer;

export interface Summary {
	/** How many flows ran (or were served from the cache). */
	flows: number;
	hits: number;
	misses: number;
	/** Bytes written to the output, writers' bytes included. */
	bytes: number;
}

// What the vinyl and gulp layers learn as a run goes: progress, each item's bytes and map.
export interface RunHooks {
	onFlowSettled?: (settled: number, total: number) => void;
	/** Every flow succeeded; the output phase starts. */
	onFlowsDone?: () => void;
	onItemWritten?: (item: RunItem, bytes: number, sourceMap: SourceMap | undefined) => void;
}

// One run of the runner. Items may be added while flows already run (the gulp plugin adds
// files as they arrive); `finish` then waits for the flows and writes the output in order.
// Every run must end in `finish`, which releases what the run holds.
export class Run {
	private readonly items: RunItem[] = [];
	private readonly tasks: Array<Promise<void>> = [];
	private readonly limit: LimitFunction;
	private readonly options: ResolvedConcatOptions;
	private readonly controller = new AbortController();
	private readonly gate: OutputGate;
	private readonly writers: WriterRunner;
	private readonly budget: MemoryBudget;
	private readonly tempDir: TempDir;
	private readonly spill: SpillFile;
	private readonly results: Array<Spooled | undefined> = [];
	private readonly cache?: CacheSession;
	private readonly hooks: RunHooks;
	private readonly waiting = new Map<number, () => void>();
	private readonly chunkPool = new ChunkPool();
	private readonly onUserAbort: () => void;
	private settled = 0;
	private firstError?: unknown;

	constructor(output: NodeJS.WritableStream, options: ResolvedConcatOptions, hooks: RunHooks) {
		this.options = options;
		this.hooks = hooks;
		this.gate = new OutputGate(output, this.controller);
		this.writers = new WriterRunner(this.gate);
		this.budget = new MemoryBudget(options.maxMemoryBytes);
		this.tempDir = new TempDir(options.tempDir);
		this.spill = new SpillFile(this.tempDir);
		this.cache = options.cache && new CacheSession(options.cache, this.budget);
		const { signal } = this.controller;
		// Each running flow listens on the run's signal (pipelines, reads): up to `limit` at once.
		setMaxListeners(0, signal);
		this.limit = pLimit({ concurrency: options.limit, rejectOnClear: true });
		signal.addEventListener('abort', () => this.limit.clearQueue(), { once: true });
		this.onUserAbort = () => this.abort(new AbortError(options.signal!.reason));
		options.signal?.addEventListener('abort', this.onUserAbort, { once: true });
		if (options.signal?.aborted) {
			this.onUserAbort();
		}
	}

	/** Adds an item at the end; a flow starts as soon as the limit allows. */
	add(item: RunItem): void {
		const index = this.items.length;
		this.items.push(item);
		if (item instanceof Flow && !this.controller.signal.aborted) {
			const onSettled = () => {
				this.settled += 1;
				this.hooks.onFlowSettled?.(this.settled, this.tasks.length);
			};

			this.tasks.push(this.limit(() => this.runFlow(item, index)).then(onSettled, (error: unknown) => this.fail(error)));
		}
	}

	itemsAdded(): readonly RunItem[] {
		return this.items;
	}

	/** Stops the run: running flows are stopped, and `finish` rejects with `reason`. */
	abort(reason: unknown): void {
		this.controller.abort(reason);
	}

	/** Once every item is added: waits for the flows, writes the output, releases everything. */
	async finish(): Promise<Summary> {
		try {
			const flows = await (this.options.early ? this.runAndWrite() : this.runFlows().then(async (count) => {
				await this.writeOutput();
				return count;
			}));
			if (this.options.end) {
				await this.gate.end();
			}

			return { flows, hits: this.cache?.hits ?? 0, misses: this.cache?.misses ?? 0, bytes: this.gate.bytes };
		} catch (error) {
			throw this.chooseError(error);
		} finally {
			this.options.signal?.removeEventListener('abort', this.onUserAbort);
			this.gate.detach();
			for (const result of this.results) {
				if (result?.type === 'memory') {
					result.release();
				}
			}

			await this.cache?.finish();
			await this.spill.close();
			await this.tempDir.remove();
		}
	}

	// The `early` mode: the output phase runs beside the flows, each item written as soon as it
	// and everything before it are done. Both must have stopped before the run settles.
	private async runAndWrite(): Promise<number> {
		const written = this.writeOutput().catch((error: unknown) => {
			this.fail(error);
			throw error;
		});
		const [flows, output] = await Promise.allSettled([this.runFlows(), written]);
		if (flows.status === 'rejected') {
			throw flows.reason;
		}

		if (output.status === 'rejected') {
			throw output.reason;
		}

		return flows.value;
	}

	private async runFlows(): Promise<number> {
		// Every task catches its error, so this waits until the last running flow has stopped.
		await Promise.all(this.tasks);
		this.controller.signal.throwIfAborted();
		this.hooks.onFlowsDone?.();
		return this.tasks.length;
	}

	private async runFlow(flow: Flow, index: number): Promise<void> {
		const { signal } = this.controller;
		signal.throwIfAborted();
		const label = () => flow.label(`item ${index + 1}`);
		const lookup = this.cache ? await this.cache.lookup(flow, label) : undefined;
		if (lookup?.status === 'hit') {
			flow.emit('hit', { source: lookup.source, path: flow.path });
			flow.emit('done', { path: flow.path, durationMs: 0 });
			this.setResult(index, lookup.spooled);
			return;
		}

		if (lookup) {
			flow.emit('miss', { path: flow.path });
		}

		// A flow with no steps needs no chain: its input is its output.
		const unchanged = !this.cache && flow.steps.length === 0 ? await this.takeUnchanged(flow, label) : undefined;
		if (unchanged) {
			this.setResult(index, unchanged);
			return;
		}

		// Without a cache entry to write, a spool is made only for an output that streams.
		let spool: Spool | undefined;
		const openSpool = () => (spool = new Spool(this.budget, this.tempDir, this.spill));
		const store = lookup?.identity && this.cache!.createStore(lookup.identity, openSpool(), lookup.status === 'miss' ? lookup.remoteId : undefined);
		let result: ChainResult;
		try {
			result = await flow[executeFlow](store ? store.sink : openSpool, signal, { label, input: lookup?.identity?.input });
		} catch (error) {
			// Wait for the half-written entry to be removed before the run can settle.
			if (store && !store.sink.closed) {
				const closed = new Promise((resolve) => store.sink.once('close', resolve));
				store.sink.destroy();
				await closed;
			}

			throw error;
		}

		if (store) {
			await store.commit({ sourceMap: result.sourceMap });
		}

		const { buffer, sourceMap } = result;
		if (!buffer) {
			this.setResult(index, spool!.result(sourceMap));
		} else if (this.budget.take(buffer.length)) {
			// An output that ended whole in memory is held as it is while the budget allows.
			this.setResult(index, this.budget.hold([buffer], buffer.length, sourceMap));
		} else {
			this.setResult(index, await this.spoolWhole(buffer, sourceMap, label));
		}
	}

	// Past the budget, a whole output goes where a spool puts it (the spill file, a temp file).
	private async spoolWhole(buffer: Buffer, sourceMap: SourceMap | undefined, label: () => string): Promise<Spooled> {
		const spool = new Spool(this.budget, this.tempDir, this.spill);
		try {
			await spool.writeWhole(buffer);
		} catch (error) {
			spool.destroy();
			throw outputError(label(), error);
		}

		return spool.result(sourceMap);
	}

	// The input of a flow with no steps as its result: bytes in memory are held as they are
	// (while the memory budget allows), a file is read now when small, else when its turn comes
	// in the output phase. A stream, or bytes past the budget, go through the chain instead.
	private async takeUnchanged(flow: Flow, label: () => string): Promise<Spooled | undefined> {
		const input = flow[flowInput];
		if (input.type === 'stream' || (input.type === 'buffer' && !this.budget.take(input.buffer.length))) {
			return undefined;
		}

		const started = performance.now();
		flow.emit('exec');
		const result = input.type === 'file' ? await this.readInputFile(input.path, label) : this.budget.hold([input.buffer], input.buffer.length, input.sourceMap);
		flow.emit('done', { path: flow.path, durationMs: performance.now() - started });
		return result;
	}

	private async readInputFile(filePath: string, label: () => string): Promise<Spooled> {
		try {
			const { size } = statSync(filePath);
			if (size <= chunkBytes && this.budget.take(size)) {
				const buffer = await readSmallFile(filePath, size).catch((error: unknown) => {
					this.budget.release(size);
					throw error;
				});
				return this.budget.hold([buffer.subarray(0, size)], size);
			}

			return { type: 'file', path: filePath, bytes: size, temporary: false };
		} catch (error) {
			throw inputError(label(), error);
		}
	}

	private setResult(index: number, spooled: Spooled): void {
		this.results[index] = spooled;
		this.waiting.get(index)?.();
	}

	// Resolves when the flow at `index` has its result; rejects when the run is aborted.
	private async resultOf(index: number): Promise<Spooled> {
		const { signal } = this.controller;
		while (!this.results[index]) {
			signal.throwIfAborted();
			this.gate.flush();
			await new Promise<void>((resolve) => {
				const wake = () => {
					this.waiting.delete(index);
					unregister();
					resolve();
				};

				this.waiting.set(index, wake);
				const unregister = onAbort(signal, wake);
			});
		}

		return this.results[index]!;
	}

	// Thousands of small items: an item that is ready and fits in the output is written
	// without awaiting anything, so the loop costs no promise per item.
	private async writeOutput(): Promise<void> {
		const { signal } = this.controller;
		for (let index = 0; index < this.items.length; index++) {
			signal.throwIfAborted();
			const item = this.items[index]!;
			const before = this.gate.bytes;
			let spooled: Spooled | undefined;
			let pending: Promise<void> | undefined;
			if (item instanceof Flow) {
				spooled = this.results[index] ?? await this.resultOf(index);
				pending = spooled.type === 'memory' ? this.writeHeld(spooled) : this.writeFile(spooled, () => item.label(`item ${index + 1}`));
			} else if (Buffer.isBuffer(item)) {
				pending = this.gate.write(item);
			} else {
				pending = this.writers.run(item, index + 1);
			}

			if (pending) {
				await pending;
			}

			this.hooks.onItemWritten?.(item, this.gate.bytes - before, spooled?.sourceMap);
		}
	}

	// A result held in memory; its chunks are let go as they are written (the run's finish
	// releases the budget of one left half-written).
	private writeHeld(spooled: Spooled & { type: 'memory' }): Promise<void> | undefined {
		const { chunks } = spooled;
		spooled.chunks = [];
		let index = 0;
		const writeRest = (): Promise<void> | undefined => {
			while (index < chunks.length) {
				const pending = this.gate.write(chunks[index++]!);
				if (pending) {
					return pending.then(writeRest);
				}
			}

			spooled.release();
			return undefined;
		};

		return writeRest();
	}

	private async writeFile(spooled: Spooled & { type: 'file' }, label: () => string): Promise<void> {
		try {
			const pool = this.gate.releasesChunks ? this.chunkPool : undefined;
			await copyFile(spooled.path, spooled.start ?? 0, spooled.bytes, (chunk, onWritten) => this.gate.write(chunk, onWritten), pool);
		} catch (error) {
			if (error instanceof FlowcatError || isAbortError(error) || this.controller.signal.aborted) {
				throw error;
			}

			throw inputError(label(), error);
		}

		if (spooled.temporary) {
			await unlink(spooled.path).catch(() => undefined);
		}
	}

	private fail(error: unknown): void {
		if (this.firstError === undefined && !isAbortError(error)) {
			this.firstError = error;
		}

		this.controller.abort(error);
	}

	// The first real error wins; aborts of siblings it caused never replace it.
	private chooseError(error: unknown): unknown {
		if (this.firstError !== undefined) {
			return this.firstError;
		}

		const reason: unknown = this.controller.signal.aborted ? this.controller.signal.reason : error;
		return reason ?? error;
	}
}

