import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { chunkBytes } from './buffered-file';

const readBytes = 4 * 1024 * 1024;

// Sends the first `bytes` of a file to `write` (a cache entry's trailer follows its result),
// reading the next chunk while the last one is being written: reads and writes overlap.
export async function copyFile(filePath: string, start: number, bytes: number, write: (chunk: Buffer) => Promise<void> | undefined): Promise<void> {
	if (bytes === 0) {
		return;
	}

	if (bytes <= chunkBytes) {
		await write(readRangeSync(filePath, start, bytes));
		return;
	}

	const handle = await open(filePath, 'r');
	const readAt = async (offset: number): Promise<Buffer> => {
		const buffer = Buffer.allocUnsafe(Math.min(readBytes, bytes - offset));
		const { bytesRead } = await handle.read(buffer, 0, buffer.length, start + offset);
		if (bytesRead === 0) {
			throw truncated(filePath, offset, bytes);
		}

		return buffer.subarray(0, bytesRead);
	};

	try {
		let position = 0;
		let next = readAt(0);
		while (position < bytes) {
			const chunk = await next;
			position += chunk.length;
			next = position < bytes ? readAt(position) : Promise.resolve(Buffer.alloc(0));
			// If the write fails, the read ahead must not become an unhandled rejection.
			next.catch(() => undefined);
			await write(chunk);
		}
	} finally {
		await handle.close();
	}
}

// A small range, read synchronously: three syscalls instead of three thread-pool trips.
export function readRangeSync(filePath: string, start: number, bytes: number): Buffer {
	const fd = openSync(filePath, 'r');
	try {
		const buffer = Buffer.allocUnsafe(bytes);
		const bytesRead = readSync(fd, buffer, 0, bytes, start);
		if (bytesRead < bytes) {
			throw truncated(filePath, bytesRead, bytes);
		}

		return buffer;
	} finally {
		closeSync(fd);
	}
}

function truncated(filePath: string, position: number, bytes: number): Error {
	return Object.assign(new Error(`The file ended after ${position} of ${bytes} bytes: ${filePath}`), { code: 'ERR_FILE_TRUNCATED' });
}
