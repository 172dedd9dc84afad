import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { compactPacks, listPacks, packOf, packsFolder } from './pack';

// Temp files older than this belong to a process that died mid-write.
const staleTempMs = 60 * 60 * 1000;

export interface PruneResult {
	removedEntries: number;
	removedBytes: number;
	keptBytes: number;
}

// Removes the least recently used entries until the entries take at most `maxBytes`, and
// the temp files that crashed writers left behind; merges packs when there are many.
export async function pruneStore(dir: string, maxBytes: number): Promise<PruneResult> {
	const now = Date.now();
	for (const name of await readdir(path.join(dir, 'tmp')).catch(() => [])) {
		await removeIfStale(path.join(dir, 'tmp', name), now);
	}

	compactPacks(dir);
	// Units of removal: a large entry's file, or a pack (its index and entries) as a whole.
	const entries: Array<{ filePaths: string[]; bytes: number; count: number; usedMs: number }> = [];
	const packs = listPacks(dir);
	for (const pack of packs) {
		const bytes = await stat(packOf(pack.index)).then((stats) => stats.size, () => 0);
		entries.push({ filePaths: [pack.index, packOf(pack.index)], bytes, count: pack.records, usedMs: pack.usedMs });
	}

	// A pack whose index was never created (the process died between the two).
	const indexed = new Set(packs.map((pack) => packOf(pack.index)));
	for (const name of await readdir(packsFolder(dir)).catch(() => [])) {
		const filePath = path.join(packsFolder(dir), name);
		if (name.endsWith('.pack') && !indexed.has(filePath)) {
			await removeIfStale(filePath, now);
		}
	}

	const entriesDir = path.join(dir, 'entries');
	for (const shard of await readdir(entriesDir).catch(() => [])) {
		for (const name of await readdir(path.join(entriesDir, shard)).catch(() => [])) {
			const filePath = path.join(entriesDir, shard, name);
			const stats = await stat(filePath).catch(() => undefined);
			if (stats) {
				entries.push({ filePaths: [filePath], bytes: stats.size, count: 1, usedMs: stats.mtimeMs });
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

		for (const filePath of entry.filePaths) {
			await rm(filePath, { force: true, recursive: true });
		}

		keptBytes -= entry.bytes;
		removedBytes += entry.bytes;
		removedEntries += entry.count;
	}

	return { removedEntries, removedBytes, keptBytes };
}

async function removeIfStale(filePath: string, now: number): Promise<void> {
	const stats = await stat(filePath).catch(() => undefined);
	if (stats && now - stats.mtimeMs > staleTempMs) {
		await rm(filePath, { force: true, recursive: true });
	}
}

// Empties the cache: entries, packs and temp files. The folder itself stays.
export async function clearStore(dir: string): Promise<void> {
	await Promise.all(['entries', 'packs', 'tmp'].map((name) => rm(path.join(dir, name), { recursive: true, force: true })));
}
