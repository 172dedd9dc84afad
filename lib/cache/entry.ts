import { createHash, randomBytes, type Hash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, read, readSync, renameSync, utimesSync } from 'node:fs';
import { link, mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { BufferedFile, chunkBytes } from '../buffered-file';
import type { MemoryBudget, Spooled } from '../spool';
import type { SourceMap } from '../vinyl';
import { sha256 } from './key';
import type { PackedEntry } from './pack';

// An entry is the result's bytes followed by a trailer, so it can be written while the flow
// streams: JSON {size, sha256, sourceMap?}, its length (uint32 BE), then the magic "FCAT".
const magic = Buffer.from('FCAT');
const readAsync = promisify(read);
// Entries up to this size are read whole in one go and served from memory.
const smallEntryBytes = chunkBytes;
// A hit refreshes an entry's mtime (its age for pruning) at most this often.
const touchIntervalMs = 60 * 60 * 1000;

export interface EntryMeta {
	sourceMap?: SourceMap;
}

interface Trailer extends EntryMeta {
	size: number;
	sha256: string;
}

export type EntryRead =
	| { status: 'hit'; spooled: Spooled }
	| { status: 'miss' }
	| { status: 'damaged'; reason: string };

export function entryPath(dir: string, id: string): string {
	return path.join(dir, 'entries', id.slice(0, 2), id);
}

function encodeTrailer(trailer: Trailer): Buffer {
	const json = Buffer.from(JSON.stringify(trailer));
	const length = Buffer.alloc(4);
	length.writeUInt32BE(json.length);
	return Buffer.concat([json, length, magic]);
}

function decodeTrailer(tail: Buffer, totalBytes: number): Trailer | undefined {
	if (tail.length < 8 || !tail.subarray(-4).equals(magic)) {
		return undefined;
	}

	const length = tail.readUInt32BE(tail.length - 8);
	if (length > tail.length - 8) {
		return undefined;
	}

	try {
		const trailer = JSON.parse(tail.subarray(tail.length - 8 - length, tail.length - 8).toString()) as Trailer;
		const { size, sha256 } = trailer;
		if (typeof size !== 'number' || typeof sha256 !== 'string' || size + length + 8 !== totalBytes) {
			return undefined;
		}

		return trailer;
	} catch {
		return undefined;
	}
}

// Reads and checks an entry. Anything wrong with it (truncated, garbage, a folder in its
// place) is "damaged", and the entry is removed so the next store repairs it.
export async function readEntry(dir: string, id: string, budget: MemoryBudget): Promise<EntryRead> {
	const filePath = entryPath(dir, id);
	let fd: number;
	try {
		fd = openSync(filePath, 'r');
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code;
		if (code === 'ENOENT') {
			return { status: 'miss' };
		}

		await rm(code === 'ENOTDIR' ? path.dirname(filePath) : filePath, { recursive: true, force: true }).catch(() => undefined);
		return { status: 'damaged', reason: `${code ?? 'unreadable'}` };
	}

	try {
		return await checkEntry(filePath, fd, budget);
	} catch (error) {
		return await damaged(filePath, (error as NodeJS.ErrnoException).code ?? 'unreadable');
	} finally {
		closeSync(fd);
	}
}

async function checkEntry(filePath: string, fd: number, budget: MemoryBudget): Promise<EntryRead> {
	const { size: totalBytes, mtimeMs } = fstatSync(fd);
	if (totalBytes <= smallEntryBytes) {
		const checked = checkSmallEntry(readTail(fd, totalBytes, totalBytes));
		if (typeof checked === 'string') {
			return damaged(filePath, checked);
		}

		touchIfStale(filePath, mtimeMs);
		return { status: 'hit', spooled: holdOrPoint(checked, budget, { path: filePath, start: 0 }) };
	}

	const tail = readTail(fd, 8, totalBytes);
	const trailer = decodeTrailer(readTail(fd, 8 + tail.readUInt32BE(0), totalBytes), totalBytes);
	if (!trailer) {
		return damaged(filePath, 'bad trailer');
	}

	const digest = createHash('sha256');
	const buffer = Buffer.allocUnsafe(chunkBytes);
	for (let offset = 0; offset < trailer.size; offset += chunkBytes) {
		const { bytesRead } = await readAsync(fd, buffer, 0, Math.min(chunkBytes, trailer.size - offset), offset);
		digest.update(buffer.subarray(0, bytesRead));
	}

	if (digest.digest('hex') !== trailer.sha256) {
		return damaged(filePath, 'digest mismatch');
	}

	touchIfStale(filePath, mtimeMs);
	return { status: 'hit', spooled: { type: 'file', path: filePath, bytes: trailer.size, temporary: false, sourceMap: trailer.sourceMap } };
}

export interface CheckedEntry {
	result: Buffer;
	sourceMap?: SourceMap;
}

// A whole small entry, read in one go: its result when the trailer and digest hold, else why not.
export function checkSmallEntry(bytes: Buffer): CheckedEntry | string {
	const trailer = decodeTrailer(bytes, bytes.length);
	if (!trailer) {
		return bytes.length === 0 ? 'empty' : 'bad trailer';
	}

	const result = bytes.subarray(0, trailer.size);
	if (sha256(result) !== trailer.sha256) {
		return 'digest mismatch';
	}

	return { result, sourceMap: trailer.sourceMap };
}

// A checked result: held in memory while the run's budget allows, else read again in its turn.
export function holdOrPoint(checked: CheckedEntry, budget: MemoryBudget, where: { path: string; start: number }): Spooled {
	const bytes = checked.result.length;
	if (budget.take(bytes)) {
		return budget.hold([checked.result], bytes, checked.sourceMap);
	}

	return { type: 'file', ...where, bytes, temporary: false, sourceMap: checked.sourceMap };
}

// An entry's (or a pack's) mtime is its last use, for pruning: refreshed on a hit at most
// hourly. True when it was refreshed.
export function touchIfStale(filePath: string, usedMs: number): boolean {
	if (Date.now() - usedMs <= touchIntervalMs) {
		return false;
	}

	try {
		const now = new Date();
		utimesSync(filePath, now, now);
	} catch {
		// Pruned meanwhile, or read-only: the age only matters for pruning.
	}

	return true;
}

function readTail(fd: number, bytes: number, totalBytes: number): Buffer {
	const length = Math.min(bytes, totalBytes);
	const buffer = Buffer.allocUnsafe(length);
	const bytesRead = readSync(fd, buffer, 0, length, totalBytes - length);
	return buffer.subarray(0, bytesRead);
}

// Folders this process already made: a cold run commits thousands of entries into 256 shards.
const madeFolders = new Set<string>();

function makeFolder(folder: string): void {
	if (!madeFolders.has(folder)) {
		mkdirSync(folder, { recursive: true });
		madeFolders.add(folder);
	}
}

// Puts the entry `fromId` under `toId` too (a hard link), so the next lookup by `toId` finds it.
export async function linkEntry(dir: string, fromId: string, toId: string): Promise<void> {
	const target = entryPath(dir, toId);
	const temporary = path.join(dir, 'tmp', `${toId}.${process.pid}.${randomBytes(4).toString('hex')}.link`);
	makeFolder(path.dirname(temporary));
	makeFolder(path.dirname(target));
	await link(entryPath(dir, fromId), temporary);
	await rename(temporary, target).catch(async (error: unknown) => {
		await rm(temporary, { force: true });
		throw error;
	});
}

async function damaged(filePath: string, reason: string): Promise<EntryRead> {
	await rm(filePath, { recursive: true, force: true }).catch(() => undefined);
	return { status: 'damaged', reason };
}

/**
 * Where committed entries are noted: a small one is appended whole to the run's pack, a large
 * one (renamed into entries/) only noted, with no buffers.
 */
export type Packer = (id: string, buffers?: Buffer[]) => PackedEntry;

// Where a committed entry's result starts: for uploads.
export interface EntryLocation {
	path: string;
	start: number;
}

// Collects an entry while the flow runs. `commit` adds the trailer and puts a small entry in the
// run's pack, a large one (already streaming to a temp file) in place by renaming it: a reader
// sees a whole entry or none, even when the process is killed.
export class EntryWriter extends Writable {
	/** Set by `commit`. */
	location?: EntryLocation;
	private readonly dir: string;
	private readonly id: string;
	private readonly pack: Packer;
	private temporaryPath?: string;
	private readonly hash: Hash = createHash('sha256');
	private size = 0;
	// Up to 1 MiB stays in memory and goes to the pack at commit; past that the entry streams
	// to its temp file.
	private chunks: Buffer[] = [];
	private file?: BufferedFile;
	// The last write, so that a discard waits for it instead of racing its open of the file.
	private lastWrite: Promise<unknown> = Promise.resolve();
	private committed = false;
	private digest?: string;

	constructor(dir: string, id: string, pack: Packer) {
		// Not destroyed after `finish`: the entry is then either committed or discarded.
		super({ highWaterMark: chunkBytes, autoDestroy: false });
		this.dir = dir;
		this.id = id;
		this.pack = pack;
	}

	override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
		this.hash.update(chunk);
		this.size += chunk.length;
		if (!this.file && this.size <= chunkBytes) {
			this.chunks.push(chunk);
			callback();
			return;
		}

		this.lastWrite = this.streamToFile([chunk]);
		this.lastWrite.then(() => callback(), callback);
	}

	override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
		if (this.committed) {
			callback(error);
			return;
		}

		this.discard().then(() => callback(error));
	}

	// Named when first needed: most entries are small and never have a temp file.
	private get temporary(): string {
		this.temporaryPath ??= path.join(this.dir, 'tmp', `${this.id}.${process.pid}.${randomBytes(4).toString('hex')}`);
		return this.temporaryPath;
	}

	/** The digest of what was written, once it is all written. */
	sha256(): string {
		this.digest ??= this.hash.digest('hex');
		return this.digest;
	}

	/** The result's size in bytes (the trailer not counted). */
	get bytes(): number {
		return this.size;
	}

	/** Puts the finished entry in place. A folder or file in the way of a large one is removed first. */
	async commit(meta: EntryMeta): Promise<void> {
		this.committed = true;
		const trailer = encodeTrailer({ size: this.size, sha256: this.sha256(), ...meta });
		if (!this.file) {
			const packed = this.pack(this.id, [...this.chunks, trailer]);
			this.chunks = [];
			this.location = { path: packed.file, start: packed.offset };
			return;
		}

		await this.streamToFile([trailer]);
		await this.file.close();
		const target = entryPath(this.dir, this.id);
		try {
			makeFolder(path.dirname(target));
			renameSync(this.temporary, target);
		} catch {
			// Something is in the way (a file where the shard folder goes, a folder where the
			// entry goes, a folder removed behind our back): clear it and try once more.
			madeFolders.delete(path.dirname(target));
			await rm(target, { recursive: true, force: true }).catch(() => undefined);
			const blocker = await stat(path.dirname(target)).catch(() => undefined);
			if (blocker && !blocker.isDirectory()) {
				await rm(path.dirname(target), { force: true });
			}

			await mkdir(path.dirname(target), { recursive: true });
			await rename(this.temporary, target);
		}

		this.pack(this.id);
		this.location = { path: target, start: 0 };
	}

	async discard(): Promise<void> {
		this.chunks = [];
		await this.lastWrite.catch(() => undefined);
		await this.file?.release();
		if (this.temporaryPath) {
			await rm(this.temporaryPath, { force: true });
		}
	}

	private async streamToFile(buffers: Buffer[]): Promise<void> {
		if (!this.file) {
			// Made every time, not through makeFolder: clearing the cache removes tmp/ whole.
			mkdirSync(path.dirname(this.temporary), { recursive: true });
			this.file = new BufferedFile(this.temporary);
			buffers = [...this.chunks, ...buffers];
			this.chunks = [];
		}

		await this.file.append(buffers);
	}
}
