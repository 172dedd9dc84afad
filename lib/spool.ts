import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { chunkBytes } from './chain';
import type { TempDir } from './temp-dir';

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
}

// A flow's finished output, waiting for its turn in the output phase.
export type Spooled =
	| { type: 'memory'; chunks: Buffer[]; bytes: number; release: () => void }
	| { type: 'file'; path: string; bytes: number; temporary: boolean };

// Holds one flow's output: in memory while the run's budget allows, then in a temp file.
export class Spool extends Writable {
	private readonly budget: MemoryBudget;
	private readonly tempDir: TempDir;
	private chunks: Buffer[] = [];
	private heldBytes = 0;
	private totalBytes = 0;
	private handle?: FileHandle;
	private filePath?: string;
	private pendingBytes = 0;

	constructor(budget: MemoryBudget, tempDir: TempDir) {
		super({ highWaterMark: chunkBytes });
		this.budget = budget;
		this.tempDir = tempDir;
	}

	override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
		this.store([chunk]).then(() => callback(), callback);
	}

	override _writev(entries: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
		this.store(entries.map((entry) => entry.chunk)).then(() => callback(), callback);
	}

	override _final(callback: (error?: Error | null) => void): void {
		this.flush().then(() => this.closeFile()).then(() => callback(), callback);
	}

	override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
		// After `finish` (auto-destroy) the output is kept for the output phase.
		if (!this.writableFinished) {
			this.discard();
		}

		this.closeFile().then(() => callback(error), () => callback(error));
	}

	/** The stored output, once the spool has finished. Its memory now belongs to the caller. */
	result(): Spooled {
		if (this.filePath) {
			return { type: 'file', path: this.filePath, bytes: this.totalBytes, temporary: true };
		}

		// Hand the chunks over, so that dropping them in the output phase frees them.
		const { budget, chunks, heldBytes } = this;
		this.chunks = [];
		this.heldBytes = 0;
		let released = false;
		return {
			type: 'memory', chunks, bytes: this.totalBytes, release() {
				if (!released) {
					released = true;
					budget.release(heldBytes);
				}
			},
		};
	}

	private discard(): void {
		this.budget.release(this.heldBytes);
		this.heldBytes = 0;
		this.chunks = [];
	}

	private async store(buffers: Buffer[]): Promise<void> {
		const size = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
		this.totalBytes += size;
		if (!this.handle && this.budget.take(size)) {
			this.chunks.push(...buffers);
			this.heldBytes += size;
			return;
		}

		if (!this.handle) {
			// Over budget: what was held moves to disk with the rest.
			this.filePath = await this.tempDir.newFile();
			this.handle = await open(this.filePath, 'w');
			this.budget.release(this.heldBytes);
			this.pendingBytes = this.heldBytes;
			this.heldBytes = 0;
		}

		this.chunks.push(...buffers);
		this.pendingBytes += size;
		if (this.pendingBytes >= chunkBytes) {
			await this.flush();
		}
	}

	private async flush(): Promise<void> {
		if (!this.handle || this.chunks.length === 0) {
			return;
		}

		const chunks = this.chunks;
		this.chunks = [];
		this.pendingBytes = 0;
		await this.handle.writev(chunks);
	}

	private async closeFile(): Promise<void> {
		const handle = this.handle;
		this.handle = undefined;
		await handle?.close();
	}
}
