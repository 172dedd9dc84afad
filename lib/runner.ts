import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import pLimit from 'p-limit';
import { chunkBytes } from './buffered-file';
import { CacheSession } from './cache/session';
import { AbortError, FlowcatError, inputError, invalidType, isAbortError } from './errors';
import type { ChainResult } from './chain';
import { executeFlow, Flow } from './flow';
import { resolveConcatOptions, type ConcatOptions, type ResolvedConcatOptions } from './options';
import { OutputGate } from './output-gate';
import { MemoryBudget, Spool, type Spooled } from './spool';
import { TempDir } from './temp-dir';
import type { SourceMap } from './vinyl';
import { runWriter, type Writer } from './writer';

export interface Summary {
	/** How many flows ran (or were served from the cache). */
	flows: number;
	hits: number;
	misses: number;
	/** Bytes written to the output, writers' bytes included. */
	bytes: number;
}

export type Item = Flow | Writer;

// Runs the flows in parallel (at most `limit` at once), then writes every item's bytes to
// `output` in the order of `items`. Nothing is written unless every flow succeeded.
export async function concat(output: NodeJS.WritableStream, items: Item[], options?: ConcatOptions): Promise<Summary> {
	return runConcat(output, items, options, {});
}

// What the vinyl and gulp layers learn as a run goes: progress, each item's bytes and map.
export interface RunHooks {
	onFlowSettled?: (settled: number, total: number) => void;
	/** Every flow succeeded; the output phase starts. */
	onFlowsDone?: () => void;
	onItemWritten?: (index: number, bytes: number, sourceMap: SourceMap | undefined) => void;
}

export async function runConcat(output: NodeJS.WritableStream, items: Item[], options: ConcatOptions | undefined, hooks: RunHooks): Promise<Summary> {
	checkOutput(output);
	checkItems(items);
	const run = new Run(output, items, resolveConcatOptions(options), hooks);
	return run.start();
}

class Run {
	private readonly items: Item[];
	private readonly options: ResolvedConcatOptions;
	private readonly controller = new AbortController();
	private readonly gate: OutputGate;
	private readonly budget: MemoryBudget;
	private readonly tempDir: TempDir;
	private readonly results: Array<Spooled | undefined>;
	private readonly cache?: CacheSession;
	private readonly hooks: RunHooks;
	private readonly waiting = new Map<number, () => void>();
	private firstError?: unknown;

	constructor(output: NodeJS.WritableStream, items: Item[], options: ResolvedConcatOptions, hooks: RunHooks) {
		this.items = items;
		this.options = options;
		this.hooks = hooks;
		this.gate = new OutputGate(output, this.controller);
		this.budget = new MemoryBudget(options.maxMemoryBytes);
		this.tempDir = new TempDir(options.tempDir);
		this.results = new Array(items.length);
		this.cache = options.cache && new CacheSession(options.cache, this.budget);
	}

	async start(): Promise<Summary> {
		const { signal } = this.options;
		const onAbort = () => this.controller.abort(new AbortError(signal!.reason));
		signal?.addEventListener('abort', onAbort, { once: true });
		try {
			if (signal?.aborted) {
				onAbort();
			}

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
			signal?.removeEventListener('abort', onAbort);
			this.gate.detach();
			for (const result of this.results) {
				if (result?.type === 'memory') {
					result.release();
				}
			}

			await this.cache?.finish();
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
		const limit = pLimit({ concurrency: this.options.limit, rejectOnClear: true });
		const { signal } = this.controller;
		signal.addEventListener('abort', () => limit.clearQueue(), { once: true });
		const tasks: Array<Promise<void>> = [];
		let settled = 0;
		const onSettled = () => {
			settled += 1;
			this.hooks.onFlowSettled?.(settled, tasks.length);
		};

		for (const [index, item] of this.items.entries()) {
			if (item instanceof Flow) {
				tasks.push(limit(() => this.runFlow(item, index)).then(onSettled, (error: unknown) => this.fail(error)));
			}
		}

		// Every task catches its error, so this waits until the last running flow has stopped.
		await Promise.all(tasks);
		signal.throwIfAborted();
		this.hooks.onFlowsDone?.();
		return tasks.length;
	}

	private async runFlow(flow: Flow, index: number): Promise<void> {
		const { signal } = this.controller;
		signal.throwIfAborted();
		const label = flow.label(`item ${index + 1}`);
		const lookup = await this.cache?.lookup(flow, label);
		if (lookup?.status === 'hit') {
			flow.emit('hit', { source: 'local', path: flow.path });
			flow.emit('done', { path: flow.path, durationMs: 0 });
			this.setResult(index, lookup.spooled);
			return;
		}

		if (lookup) {
			flow.emit('miss', { path: flow.path });
		}

		// A file that goes through no step needs no copy: the output phase reads it directly.
		if (!this.cache && flow.steps.length === 0 && flow.inputKind === 'file') {
			this.setResult(index, { type: 'file', path: flow.path!, bytes: await statInput(flow, label), temporary: false });
			return;
		}

		const spool = new Spool(this.budget, this.tempDir);
		const store = lookup?.identity && this.cache!.createStore(lookup.identity, spool);
		let result: ChainResult;
		try {
			result = await flow[executeFlow](store ? store.sink : spool, signal, { fallbackLabel: `item ${index + 1}`, input: lookup?.identity?.input });
		} catch (error) {
			store?.sink.destroy();
			throw error;
		}

		await store?.commit(result);
		this.setResult(index, { ...spool.result(), sourceMap: result.sourceMap });
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
			await new Promise<void>((resolve) => {
				const wake = () => {
					this.waiting.delete(index);
					signal.removeEventListener('abort', wake);
					resolve();
				};

				this.waiting.set(index, wake);
				signal.addEventListener('abort', wake, { once: true });
			});
		}

		return this.results[index]!;
	}

	private async writeOutput(): Promise<void> {
		for (const [index, item] of this.items.entries()) {
			this.controller.signal.throwIfAborted();
			const before = this.gate.bytes;
			const spooled = item instanceof Flow ? await this.resultOf(index) : undefined;
			if (item instanceof Flow) {
				await this.writeSpooled(spooled!, item);
			} else {
				await runWriter(item, this.gate, index + 1);
			}

			this.hooks.onItemWritten?.(index, this.gate.bytes - before, spooled?.sourceMap);
		}
	}

	private async writeSpooled(spooled: Spooled, flow: Flow): Promise<void> {
		if (spooled.type === 'memory') {
			for (const chunk of spooled.chunks) {
				await this.gate.write(chunk);
			}

			spooled.release();
			spooled.chunks = [];
			return;
		}

		try {
			// `bytes` may end before the file does: a cache entry's trailer follows its result.
			const range = { start: 0, end: spooled.bytes - 1 };
			for await (const chunk of spooled.bytes === 0 ? [] : createReadStream(spooled.path, { highWaterMark: chunkBytes, ...range })) {
				await this.gate.write(chunk as Buffer);
			}
		} catch (error) {
			if (error instanceof FlowcatError || isAbortError(error) || this.controller.signal.aborted) {
				throw error;
			}

			throw inputError(flow.label(), error);
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

async function statInput(flow: Flow, label: string): Promise<number> {
	try {
		const stats = await stat(flow.path!);
		if (!stats.isFile()) {
			throw Object.assign(new Error(`EISDIR: not a regular file, read '${flow.path}'`), { code: 'EISDIR' });
		}

		return stats.size;
	} catch (error) {
		throw inputError(label, error);
	}
}

function checkOutput(output: unknown): void {
	const candidate = output as NodeJS.WritableStream | null;
	if (typeof candidate?.write !== 'function' || typeof candidate.on !== 'function' || typeof candidate.end !== 'function') {
		throw invalidType('output', 'a writable stream', output);
	}
}

function checkItems(items: unknown): asserts items is Item[] {
	if (!Array.isArray(items)) {
		throw invalidType('items', 'an array of flows and writer functions', items);
	}

	for (const [index, item] of items.entries()) {
		if (!(item instanceof Flow) && typeof item !== 'function') {
			throw invalidType(`items[${index}]`, 'a Flow or a writer function', item);
		}

		if (typeof item === 'function' && item.length > 2) {
			throw invalidType(`items[${index}]`, 'a writer function of 0, 1 or 2 parameters', item);
		}
	}
}
