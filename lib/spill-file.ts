import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { TempDir } from './temp-dir';

// One append-only temp file per run for small outputs past the memory budget: thousands of
// them then cost one file, not one file each. Appends reserve their range first, so
// concurrent flows write side by side.
export class SpillFile {
	private readonly tempDir: TempDir;
	private handle?: Promise<{ path: string; handle: FileHandle }>;
	private sizeBytes = 0;

	constructor(tempDir: TempDir) {
		this.tempDir = tempDir;
	}

	async append(buffers: Buffer[], bytes: number): Promise<{ path: string; start: number }> {
		const start = this.sizeBytes;
		this.sizeBytes += bytes;
		this.handle ??= this.tempDir.newFile().then(async (filePath) => ({ path: filePath, handle: await open(filePath, 'w') }));
		const { path, handle } = await this.handle;
		await handle.writev(buffers, start);
		return { path, start };
	}

	async close(): Promise<void> {
		const opened = await this.handle?.catch(() => undefined);
		this.handle = undefined;
		await opened?.handle.close().catch(() => undefined);
	}
}
