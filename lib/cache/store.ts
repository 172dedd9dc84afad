import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

// Temp files older than this belong to a process that died mid-write.
const staleTempMs = 60 * 60 * 1000;

export interface PruneResult {
	removedEntries: number;
	removedBytes: number;
	keptBytes: number;
}

// Removes the least recently used entries until the entries take at most `maxBytes`,
// and the temp files that crashed writers left behind.
export async function pruneStore(dir: string, maxBytes: number): Promise<PruneResult> {
	const now = Date.now();
	for (const name of await readdir(path.join(dir, 'tmp')).catch(() => [])) {
		const filePath = path.join(dir, 'tmp', name);
		const stats = await stat(filePath).catch(() => undefined);
		if (stats && now - stats.mtimeMs > staleTempMs) {
			await rm(filePath, { force: true, recursive: true });
		}
	}

	const entries: Array<{ filePath: string; bytes: number; usedMs: number }> = [];
	const entriesDir = path.join(dir, 'entries');
	for (const shard of await readdir(entriesDir).catch(() => [])) {
		for (const name of await readdir(path.join(entriesDir, shard)).catch(() => [])) {
			const filePath = path.join(entriesDir, shard, name);
			const stats = await stat(filePath).catch(() => undefined);
			if (stats) {
				entries.push({ filePath, bytes: stats.size, usedMs: stats.mtimeMs });
			}
		}
	}

	let keptBytes = entries.reduce((sum, entry) => sum + entry.bytes, 0);
	let removedEntries = 0;
	let removedBytes = 0;
	entries.sort((a, b) => a.usedMs - b.usedMs);
	for (const entry of entries) {
		if (keptBytes <= maxBytes) {
			break;
		}

		await rm(entry.filePath, { force: true, recursive: true });
		keptBytes -= entry.bytes;
		removedBytes += entry.bytes;
		removedEntries += 1;
	}

	return { removedEntries, removedBytes, keptBytes };
}

// Empties the cache: entries and temp files. The folder itself stays.
export async function clearStore(dir: string): Promise<void> {
	await Promise.all(['entries', 'tmp'].map((name) => rm(path.join(dir, name), { recursive: true, force: true })));
}
