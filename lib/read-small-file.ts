import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { chunkBytes } from './buffered-file';

// Reads a whole file: synchronously when it is small (one syscall each for open, read and
// close, instead of a round trip through libuv's thread pool for each), else asynchronously.
export async function readSmallFile(filePath: string, sizeBytes: number): Promise<Buffer> {
	return sizeBytes <= chunkBytes ? readFileSync(filePath) : readFile(filePath);
}
