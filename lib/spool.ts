import { Writable } from 'node:stream';
import { BufferedFile, chunkBytes } from './buffered-file';
import type { SpillFile } from './spill-file';
import type { TempDir } from './temp-dir';
import type { SourceMap } from './vinyl';

// How many bytes of finished flow outputs a run may hold in memory, shared by its flows.
export class MemoryBudget {
	private readonly limitBytes: number;
	private usedBytes = 0;

	constructor(limitBytes: number) {
		this.limitBytes = limitBytes;
	}

	take(bytes: number): boolean {
		if (this.usedBytes + bytes > this.limitBytes) {
			return false;
		}

		this.usedBytes += bytes;
		return true;
	}

	release(bytes: number): void {
		this.usedBytes -= bytes;
	}

	// Chunks held against the budget, handed out with a release that works once.
	hold(chunks: Buffer[], bytes: number, sourceMap?: SourceMap): Extract<Spooled, { type: 'memory' }> {
		let released = false;
		return {
			type: 'memory', chunks, bytes, sourceMap, release: () => {
				if (!released) {
					released = true;
					this.release(bytes);
				}
			},
		};
	}
}

// A flow's finished output, waiting for its turn in the output phase: chunks in memory, or
// the first `bytes` of a file (a temp file of the run's, a cache entry, or the input itself).
export type Spooled = (
	| { type: 'memory'; chunks: Buffer[]; bytes: number; release: () => void }
	| { type: 'file'; path: string; start?: number; bytes: number; temporary: boolean }
) & { sourceMap?: SourceMap };

// Holds one flow's output: in memory while the run's budget allows; past it, a small output
// goes to the run's shared spill file when it is complete, a large one to a temp file of its own.
export class Spool extends Writable {
	private readonly budget: MemoryBudget;
	private readonly tempDir: TempDir;
	private readonly spill: SpillFile;
	private chunks: Buffer[] = [];
	private heldBytes = 0;
	private totalBytes = 0;
	private overBudget = false;
	private spilled?: { path: string; start: number };
	private file?: BufferedFile;

	constructor(budget: MemoryBudget, tempDir: TempDir, spill: SpillFile) {
		super({ highWaterMark: chunkBytes });
		this.budget = budget;
		this.tempDir = tempDir;
		this.spill = spill;
	}

	override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
		this.store([chunk]).then(() => callback(), callback);
	}

	override _writev(entries: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
		this.store(entries.map((entry) => entry.chunk)).then(() => callback(), callback);
	}

	override _final(callback: (error?: Error | null) => void): void {
		this.complete().then(() => callback(), callback);
	}

	override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
		// After `finish` (auto-destroy) the output is kept for the output phase.
		if (!this.writableFinished) {
			this.budget.release(this.heldBytes);
			this.heldBytes = 0;
			this.chunks = [];
		}

		(this.file?.release() ?? Promise.resolve()).then(() => callback(error));
	}

	/** Stores `buffer` as the whole output, instead of writing and ending the stream. */
	async writeWhole(buffer: Buffer): Promise<void> {
		await this.store([buffer]);
		await this.complete();
	}

	/** The stored output, once the spool has finished. Its memory now belongs to the caller. */
	result(sourceMap: SourceMap | undefined): Spooled {
		if (this.file) {
			return { type: 'file', path: this.file.path, bytes: this.totalBytes, temporary: true, sourceMap };
		}

		if (this.spilled) {
			return { type: 'file', ...this.spilled, bytes: this.totalBytes, temporary: false, sourceMap };
		}

		const spooled = this.budget.hold(this.chunks, this.heldBytes, sourceMap);
		this.chunks = [];
		this.heldBytes = 0;
		return spooled;
	}

	private async complete(): Promise<void> {
		if (this.file) {
			await this.file.close();
		} else if (this.overBudget) {
			this.spilled = await this.spill.append(this.chunks, this.totalBytes);
			this.chunks = [];
		}
	}

	private async store(buffers: Buffer[]): Promise<void> {
		const size = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
		this.totalBytes += size;
		if (this.file) {
			await this.file.append(buffers);
			return;
		}

		if (!this.overBudget && this.budget.take(size)) {
			this.chunks.push(...buffers);
			this.heldBytes += size;
			return;
		}

		// Over budget: what was held no longer counts; up to 1 MiB waits for the spill file.
		if (!this.overBudget) {
			this.overBudget = true;
			this.budget.release(this.heldBytes);
			this.heldBytes = 0;
		}

		this.chunks.push(...buffers);
		if (this.totalBytes > chunkBytes) {
			const filePath = await this.tempDir.newFile();
			if (this.destroyed) {
				throw Object.assign(new Error('The spool was destroyed'), { code: 'ERR_STREAM_DESTROYED' });
			}

			this.file = new BufferedFile(filePath);
			const chunks = this.chunks;
			this.chunks = [];
			await this.file.append(chunks);
		}
	}
}
