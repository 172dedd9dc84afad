import type { MemoryBudget } from '../spool';
import { checkSmallEntry, EntryWriter, holdOrPoint, linkEntry, readEntry, touchIfStale, type EntryRead } from './entry';
import { listPacks, PackReader, PackWriter, readPackIndex, type PackedEntry } from './pack';

// The cache folder as one run sees it: small entries in packs, large ones in files of their own
// under entries/, all found through the packs' indexes (read at the first lookup).
export class LocalStore {
	readonly dir: string;
	private readonly budget: MemoryBudget;
	private readonly writer: PackWriter;
	private packed?: Map<string, PackedEntry>;
	// The packs this run reads stay open until it ends: one open per pack, not one per hit.
	private readonly reader = new PackReader();

	constructor(dir: string, budget: MemoryBudget) {
		this.dir = dir;
		this.budget = budget;
		this.writer = new PackWriter(dir);
	}

	async read(id: string): Promise<EntryRead> {
		const packed = this.index().get(id);
		if (!packed) {
			return { status: 'miss' };
		}

		if (packed.length > 0) {
			return this.readPacked(id, packed);
		}

		const read = await readEntry(this.dir, id, this.budget);
		if (read.status !== 'hit') {
			this.packed!.delete(id);
		}

		return read;
	}

	createWriter(id: string): EntryWriter {
		return new EntryWriter(this.dir, id, (entryId, buffers) => this.append(entryId, buffers));
	}

	/** Stores the entry found under `fromId` under `toId` too, so a lookup by `toId` finds it. */
	async link(fromId: string, toId: string): Promise<void> {
		const packed = this.index().get(fromId);
		if (packed?.length) {
			// A copy of a small entry costs less than a new file.
			this.append(toId, [this.reader.read(packed)]);
		} else {
			await linkEntry(this.dir, fromId, toId);
			this.append(toId);
		}
	}

	/** After the run: closes the packs it read and wrote. */
	close(): void {
		this.reader.close();
		this.writer.close();
	}

	private append(id: string, buffers?: Buffer[]): PackedEntry {
		const packed = this.writer.append(id, buffers);
		this.index().set(id, packed);
		return packed;
	}

	private readPacked(id: string, packed: PackedEntry): EntryRead {
		let bytes: Buffer;
		try {
			bytes = this.reader.read(packed);
		} catch (error) {
			this.packed!.delete(id);
			const code = (error as NodeJS.ErrnoException).code;
			// Pruned by another process since this run read the indexes: not found, not damaged.
			return code === 'ENOENT' ? { status: 'miss' } : { status: 'damaged', reason: code ?? 'unreadable' };
		}

		const checked = checkSmallEntry(bytes);
		if (typeof checked === 'string') {
			// Left in its pack until pruning; the rebuilt entry, stored later, supersedes it.
			this.packed!.delete(id);
			return { status: 'damaged', reason: checked };
		}

		// A pack's index mtime is when its entries were last used, for pruning.
		if (touchIfStale(packed.pack.index, packed.pack.usedMs)) {
			packed.pack.usedMs = Date.now();
		}

		return { status: 'hit', spooled: holdOrPoint(checked, this.budget, { path: packed.file, start: packed.offset }) };
	}

	private index(): Map<string, PackedEntry> {
		if (!this.packed) {
			this.packed = new Map();
			for (const pack of listPacks(this.dir)) {
				readPackIndex(pack, this.packed);
			}
		}

		return this.packed;
	}
}
