import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
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
	await removeOrphans(target);
	const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.flowcat-tmp`);
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

// Temp files left beside `target` by runs whose process died (killed mid-run): their pid,
// in the name, no longer runs. Those of live processes (a parallel build) are theirs.
async function removeOrphans(target: string): Promise<void> {
	const prefix = `.${path.basename(target)}.`;
	const names = await readdir(path.dirname(target)).catch(() => []);
	for (const name of names) {
		const pid = name.startsWith(prefix) && name.endsWith('.flowcat-tmp') ? Number(name.slice(prefix.length).split('.')[0]) : Number.NaN;
		if (Number.isInteger(pid) && !isRunning(pid)) {
			await rm(path.join(path.dirname(target), name), { force: true });
		}
	}
}

function isRunning(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === 'EPERM';
	}
}
