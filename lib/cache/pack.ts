import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, utimesSync, writevSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { checkSmallEntry } from './entry';

// Small entries live in pack files: creating a file costs up to a millisecond of kernel time on
// some file systems (ext4 on the virtual disks of CI machines), appending to an open one a few
// microseconds, and a cold run stores thousands of entries. Each run that stores anything
// appends to a pack of its own: `<name>.pack` holds entries back to back (result + trailer, as
// in a loose entry file), and `<name>.idx` one 48-byte record per entry: the id (32 bytes), the
// offset (uint64 BE) and length (uint32 BE) in the pack, and the crc32 of those 44 bytes, so a
// torn record ends the index there instead of pointing somewhere wrong. A large entry, in a file
// of its own under entries/, has a record too, with offset and length 0: a lookup never has to
// try a file that is not there. Names start with the creation time and the last record for an
// id wins, so a rebuilt entry supersedes a damaged one.
const recordBytes = 48;
// Every run reads every index: past this many packs, all but the newest are merged into one.
const maxPacks = 32;
// The newest packs are left alone: their runs may still be writing to them.
const keptPacks = 8;

export interface PackedEntry {
	pack: PackFile;
	file: string;
	offset: number;
	length: number;
}

export interface PackFile {
	index: string;
	usedMs: number;
	/** How many records its index holds (superseded ones included). */
	records: number;
}

export function packsFolder(dir: string): string {
	return path.join(dir, 'packs');
}

// Every pack's index, oldest first, so that later records override earlier ones; `usedMs` is
// when one of its entries was last used (refreshed on hits, for pruning).
export function listPacks(dir: string): PackFile[] {
	const folder = packsFolder(dir);
	let names: string[];
	try {
		names = readdirSync(folder);
	} catch {
		return [];
	}

	const packs: PackFile[] = [];
	for (const name of names) {
		if (name.endsWith('.idx')) {
			const index = path.join(folder, name);
			const stats = statSync(index, { throwIfNoEntry: false });
			if (stats) {
				packs.push({ index, usedMs: stats.mtimeMs, records: Math.floor(stats.size / recordBytes) });
			}
		}
	}

	return packs.sort((a, b) => (a.index < b.index ? -1 : 1));
}

export function packOf(index: string): string {
	return index.slice(0, -'.idx'.length) + '.pack';
}

// Adds a pack's records to `entries`, up to the first torn or garbled one.
export function readPackIndex(pack: PackFile, entries: Map<string, PackedEntry>): void {
	let bytes: Buffer;
	try {
		bytes = readFileSync(pack.index);
	} catch {
		return;
	}

	const file = packOf(pack.index);
	for (let at = 0; at + recordBytes <= bytes.length; at += recordBytes) {
		if (crc32(bytes.subarray(at, at + 44)) !== bytes.readUInt32BE(at + 44)) {
			return;
		}

		const id = bytes.toString('hex', at, at + 32);
		entries.set(id, { file, offset: Number(bytes.readBigUInt64BE(at + 32)), length: bytes.readUInt32BE(at + 40), pack });
	}
}

// A run's pack, created at its first entry; `close` after the run.
export class PackWriter {
	private readonly folder: string;
	/** The pack being written, once the first entry is in. */
	pack?: PackFile;
	private packFd?: number;
	private indexFd?: number;
	private size = 0;

	constructor(dir: string) {
		this.folder = packsFolder(dir);
	}

	/**
	 * Appends an entry and its index record, or with no buffers only a record for a large entry.
	 * Throws when the disk refuses (the pack is then left for a new one).
	 */
	append(id: string, buffers: Buffer[] = []): PackedEntry {
		const length = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
		const { packFd, indexFd } = this.open();
		const offset = length === 0 ? 0 : this.size;
		try {
			writeAll(packFd, buffers, length);
			this.size += length;
			const record = Buffer.alloc(recordBytes);
			record.write(id, 0, 32, 'hex');
			record.writeBigUInt64BE(BigInt(offset), 32);
			record.writeUInt32BE(length, 40);
			record.writeUInt32BE(crc32(record.subarray(0, 44)), 44);
			writeAll(indexFd, [record], recordBytes);
		} catch (error) {
			// A short write leaves the pack or index with a torn tail: go on in a new pack.
			this.close();
			throw error;
		}

		return { pack: this.pack!, file: packOf(this.pack!.index), offset, length };
	}

	private open(): { packFd: number; indexFd: number } {
		// A pack of its own per run: one new pair of files, however many entries.
		if (this.packFd === undefined || this.indexFd === undefined) {
			// Sorts by creation time (base 36, fixed width until the year 5188).
			const name = `${Date.now().toString(36).padStart(9, '0')}-${process.pid}-${randomBytes(3).toString('hex')}`;
			makePacksFolder(this.folder);
			this.packFd = openSync(path.join(this.folder, `${name}.pack`), 'wx');
			try {
				this.indexFd = openSync(path.join(this.folder, `${name}.idx`), 'wx');
			} catch (error) {
				this.close();
				throw error;
			}

			this.size = 0;
			this.pack = { index: path.join(this.folder, `${name}.idx`), usedMs: Date.now(), records: 0 };
		}

		return { packFd: this.packFd, indexFd: this.indexFd };
	}

	close(): void {
		for (const fd of [this.packFd, this.indexFd]) {
			if (fd !== undefined) {
				closeSync(fd);
			}
		}

		this.packFd = undefined;
		this.indexFd = undefined;
	}
}

// Reads entries out of packs, each pack opened once and kept open until `close`.
export class PackReader {
	private readonly fds = new Map<string, number>();

	/** The entry's bytes (fewer when its pack was cut short); throws when the pack is gone. */
	read(entry: PackedEntry): Buffer {
		let fd = this.fds.get(entry.file);
		if (fd === undefined) {
			fd = openSync(entry.file, 'r');
			this.fds.set(entry.file, fd);
		}

		const buffer = Buffer.allocUnsafe(entry.length);
		return buffer.subarray(0, readSync(fd, buffer, 0, entry.length, entry.offset));
	}

	close(): void {
		for (const fd of this.fds.values()) {
			closeSync(fd);
		}

		this.fds.clear();
	}
}

// Merges the older packs into one, keeping only the entries no newer record supersedes and whose
// digest still holds. A run that read the old indexes finds their packs gone: misses, not errors.
export function compactPacks(dir: string): void {
	const packs = listPacks(dir);
	if (packs.length <= maxPacks) {
		return;
	}

	const merged = new Set(packs.slice(0, -keptPacks));
	const entries = new Map<string, PackedEntry>();
	for (const pack of packs) {
		readPackIndex(pack, entries);
	}

	const writer = new PackWriter(dir);
	const reader = new PackReader();
	try {
		for (const [id, entry] of entries) {
			if (!merged.has(entry.pack)) {
				continue;
			}

			const bytes = entry.length === 0 ? undefined : reader.read(entry);
			if (!bytes) {
				writer.append(id);
			} else if (typeof checkSmallEntry(bytes) !== 'string') {
				writer.append(id, [bytes]);
			}
		}
	} finally {
		writer.close();
		reader.close();
	}

	if (writer.pack) {
		// As recently used as the most recently used of the packs it replaces.
		const usedSeconds = Math.max(...[...merged].map((pack) => pack.usedMs)) / 1000;
		utimesSync(writer.pack.index, usedSeconds, usedSeconds);
	}

	for (const pack of merged) {
		rmSync(pack.index, { force: true });
		rmSync(packOf(pack.index), { force: true });
	}
}

function makePacksFolder(folder: string): void {
	try {
		mkdirSync(folder, { recursive: true });
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
			throw error;
		}

		// A file where the folder goes, inside the cache folder: ours to replace.
		rmSync(folder);
		mkdirSync(folder);
	}
}

function writeAll(fd: number, buffers: Buffer[], length: number): void {
	if (length === 0) {
		return;
	}

	const written = writevSync(fd, buffers);
	if (written !== length) {
		throw Object.assign(new Error(`Wrote ${written} of ${length} bytes to a cache pack`), { code: 'ENOSPC' });
	}
}
