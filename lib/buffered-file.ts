import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';

export const chunkBytes = 1024 * 1024;

// Appends chunks to a file in batches of about 1 MiB: one writev for many small chunks.
export class BufferedFile {
	readonly path: string;
	private handle?: Promise<FileHandle>;
	private pending: Buffer[] = [];
	private pendingBytes = 0;
	private released = false;

	constructor(filePath: string) {
		this.path = filePath;
	}

	async append(buffers: Buffer[]): Promise<void> {
		await this.opened();
		for (const buffer of buffers) {
			this.pending.push(buffer);
			this.pendingBytes += buffer.length;
		}

		if (this.pendingBytes >= chunkBytes) {
			await this.flush();
		}
	}

	async flush(): Promise<void> {
		if (this.pending.length === 0) {
			return;
		}

		const buffers = this.pending;
		this.pending = [];
		this.pendingBytes = 0;
		await (await this.opened()).writev(buffers);
	}

	// Flushes what is pending and closes the file (it is created even when empty).
	async close(): Promise<void> {
		await this.opened();
		await this.flush();
		await this.release();
	}

	// Closes without flushing, on the error path; never throws. A write still on its way
	// afterwards fails instead of opening the file again.
	async release(): Promise<void> {
		this.released = true;
		const handle = this.handle;
		this.handle = undefined;
		this.pending = [];
		if (!handle) {
			return;
		}

		try {
			await (await handle).close();
		} catch {
			// The file failed to open or close: on this path the first error is already known.
		}
	}

	// Opens on first use; a failed open is forgotten, so a later call may try again.
	private opened(): Promise<FileHandle> {
		this.handle ??= this.open().catch((error: unknown) => {
			this.handle = undefined;
			throw error;
		});
		return this.handle;
	}

	private async open(): Promise<FileHandle> {
		if (this.released) {
			throw Object.assign(new Error(`Cannot write to ${this.path} after it was released`), { code: 'ERR_STREAM_DESTROYED' });
		}

		return open(this.path, 'w');
	}
}
