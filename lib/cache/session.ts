import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { toError } from '../errors';
import type { Flow } from '../flow';
import type { MemoryBudget, Spooled } from '../spool';
import { createTee } from '../tee';
import type { Cache } from './cache';
import type { EntryMeta, EntryRead } from './entry';
import { LocalStore } from './local-store';
import { RemoteStore } from './remote';
import { identifyFlow, type CacheIdentity } from './key';

const pruneIntervalMs = 10 * 60 * 1000;

export type Lookup =
	| { status: 'hit'; spooled: Spooled; identity: CacheIdentity; source: 'local' | 'remote' }
	| { status: 'miss'; identity?: CacheIdentity; remoteId?: string };

// One run's use of a cache: looks flows up, stores new results, counts hits and misses, and
// reports what went wrong with the cache once at the end, without failing the run for it.
export class CacheSession {
	hits = 0;
	misses = 0;
	private readonly cache: Cache;
	private readonly local: LocalStore;
	private readonly remote?: RemoteStore;
	private ready?: Promise<boolean>;
	private stored = 0;
	private storedBytes = 0;
	private readonly repaired: string[] = [];
	private writeError?: Error;

	constructor(cache: Cache, budget: MemoryBudget) {
		this.cache = cache;
		this.local = new LocalStore(cache.dir, budget);
		this.remote = cache.remote && new RemoteStore(cache.remote);
	}

	async lookup(flow: Flow, label: () => string): Promise<Lookup> {
		const identity = await identifyFlow(flow, this.cache.method, label);
		if (!identity || !(await this.isReady())) {
			this.misses += 1;
			return { status: 'miss', identity: undefined };
		}

		const read = await this.read(identity, label);
		if (read.status === 'hit') {
			this.hits += 1;
			return { status: 'hit', spooled: read.spooled, identity, source: 'local' };
		}

		// Not found by stat: perhaps stored while the file was fresh, under its contents' key.
		let portable: CacheIdentity | undefined = identity.portable ? identity : undefined;
		if (identity.byContents) {
			portable = await identity.byContents();
			const found = await this.read(portable, label);
			if (found.status === 'hit') {
				await this.local.link(portable.id, identity.id).catch(() => undefined);
				this.hits += 1;
				return { status: 'hit', spooled: found.spooled, identity, source: 'local' };
			}
		}

		const fromRemote = portable && await this.readRemote(portable, identity, label);
		if (fromRemote?.status === 'hit') {
			this.hits += 1;
			return { status: 'hit', spooled: fromRemote.spooled, identity, source: 'remote' };
		}

		this.misses += 1;
		return { status: 'miss', identity: { ...identity, input: portable?.input ?? identity.input }, remoteId: portable?.id };
	}

	// Asks the shared cache after a local miss; a remote hit is stored locally under the local
	// key, then read back like any entry, so it is checked once more.
	private async readRemote(portable: CacheIdentity, identity: CacheIdentity, label: () => string): Promise<EntryRead | undefined> {
		if (!this.remote || this.remote.failure) {
			return undefined;
		}

		const writer = this.local.createWriter(identity.id);
		try {
			const found = await this.remote.download(portable.id, writer);
			if (!found) {
				writer.destroy();
				return undefined;
			}

			await writer.commit(found);
		} catch (error) {
			this.remote.fail(error);
			writer.destroy();
			return undefined;
		}

		return this.read(identity, label);
	}

	private async read(identity: CacheIdentity, label: () => string): Promise<EntryRead> {
		const read = await this.local.read(identity.id);
		if (read.status === 'damaged') {
			this.repaired.push(`${label()} (${read.reason})`);
		}

		return read;
	}

	// A sink that feeds `spool` and, on the side, a new entry; `commit` after the flow succeeded.
	createStore(identity: CacheIdentity, spool: Writable, remoteId: string | undefined): { sink: Writable; commit: (meta: EntryMeta) => Promise<void> } {
		const writer = this.local.createWriter(identity.id);
		const sink = createTee(spool, writer, (error) => this.onWriteError(error));
		const commit = async (meta: EntryMeta) => {
			if (writer.destroyed || !writer.writableFinished) {
				return;
			}

			try {
				await writer.commit(meta);
				this.stored += 1;
				this.storedBytes += writer.bytes;
				if (remoteId) {
					this.remote?.upload(remoteId, writer.location!, writer.bytes, writer.sha256(), meta.sourceMap);
				}
			} catch (error) {
				this.onWriteError(toError(error));
				await writer.discard();
			}
		};

		return { sink, commit };
	}

	// After the run: prune if anything was added, and say once what happened to the cache.
	async finish(): Promise<void> {
		await this.remote?.drain();
		this.local.close();
		if (this.remote?.failure) {
			process.emitWarning(`flowcat: the remote cache at ${this.remote.location} failed and was not used for the rest of the run: ${this.remote.failure.message}`, { code: 'FLOWCAT_REMOTE_CACHE_FAILED' });
		}

		if (this.stored > 0 && await this.isPruneDue()) {
			await this.cache.prune().catch((error: unknown) => this.onWriteError(toError(error)));
			await writeFile(path.join(this.cache.dir, 'pruned'), '').catch(() => undefined);
		}

		if (this.repaired.length > 0) {
			const shown = this.repaired.slice(0, 5).join(', ');
			const more = this.repaired.length > 5 ? ` and ${this.repaired.length - 5} more` : '';
			process.emitWarning(`flowcat: ${this.repaired.length} damaged cache ${this.repaired.length === 1 ? 'entry was' : 'entries were'} found in ${this.cache.dir} and rebuilt: ${shown}${more}`, { code: 'FLOWCAT_CACHE_REPAIRED' });
		}

		if (this.writeError) {
			process.emitWarning(`flowcat: could not write to the cache in ${this.cache.dir}; results were not stored: ${this.writeError.message}`, { code: 'FLOWCAT_CACHE_UNWRITABLE' });
		}
	}

	// Pruning reads every entry's size: do it after a run that stored much, or every so often.
	private async isPruneDue(): Promise<boolean> {
		if (this.storedBytes * 16 > this.cache.maxBytes) {
			return true;
		}

		const pruned = await stat(path.join(this.cache.dir, 'pruned')).catch(() => undefined);
		return !pruned || Date.now() - pruned.mtimeMs > pruneIntervalMs;
	}

	private isReady(): Promise<boolean> {
		this.ready ??= mkdir(this.cache.dir, { recursive: true }).then(() => true, (error: unknown) => {
			this.onWriteError(toError(error));
			return false;
		});
		return this.ready;
	}

	private onWriteError(error: Error): void {
		this.writeError ??= error;
	}
}
