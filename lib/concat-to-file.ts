import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { invalidType } from './errors';
import type { ConcatOptions } from './options';
import { concat, type Item, type Summary } from './runner';

// `concat` into a file, all or nothing: a temp file beside `filePath` is renamed over it only
// when the run succeeded, so a failed or aborted run leaves any earlier file untouched.
export async function concatToFile(filePath: string, items: Item[], options?: ConcatOptions): Promise<Summary> {
	if (typeof filePath !== 'string' || filePath === '') {
		throw invalidType('path', 'a non-empty string', filePath);
	}

	const target = path.resolve(filePath);
	const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.flowcat-tmp`);
	const output = createWriteStream(temporary, { highWaterMark: 1024 * 1024 });
	try {
		const summary = await concat(output, items, { ...options, end: true });
		await rename(temporary, target);
		return summary;
	} catch (error) {
		// The file may still be opening: wait for the close, or the removal could come first.
		if (!output.closed) {
			const closed = once(output, 'close');
			output.destroy();
			await closed;
		}

		await rm(temporary, { force: true });
		throw error;
	}
}
