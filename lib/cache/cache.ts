import path from 'node:path';
import { invalidRange, invalidType } from '../errors';
import { checkCount } from '../check';
import { cacheMethods, type CacheMethod } from './key';
import { resolveRemoteOptions, type RemoteOptions } from './remote';
import { clearStore, pruneStore, type PruneResult } from './store';

export interface CacheOptions {
	/** The folder that holds the cache; created when it does not exist. */
	dir: string;
	/** How an input file counts as unchanged: 'stat' (size and mtime, the default) or a digest of its contents. */
	method?: CacheMethod;
	/** Past this many bytes of entries, the least recently used are removed after a run. Default: 1 GiB. */
	maxBytes?: number;
	/**
	 * A shared cache server (Bazel's HTTP remote-cache protocol), asked after a local miss.
	 * Default: the URL in FLOWCAT_REMOTE_CACHE, if set; false turns it off.
	 */
	remote?: RemoteOptions | false;
}

export const defaultMaxCacheBytes = 1024 ** 3;

// An on-disk store of flow results, keyed by each flow's input and identity.
export class Cache {
	readonly dir: string;
	readonly method: CacheMethod;
	readonly maxBytes: number;
	readonly remote?: RemoteOptions;

	constructor(options: CacheOptions) {
		if (typeof options !== 'object' || options === null) {
			throw invalidType('cache', 'a Cache or an object with a `dir`', options);
		}

		const { dir, method = 'stat', maxBytes = defaultMaxCacheBytes } = options;
		if (typeof dir !== 'string' || dir === '') {
			throw invalidType('dir', 'a non-empty string', dir);
		}

		if (!cacheMethods.includes(method)) {
			throw (typeof method === 'string' ? invalidRange : invalidType)('method', `one of ${cacheMethods.map((name) => `'${name}'`).join(', ')}`, method);
		}

		checkCount('maxBytes', maxBytes, 0);
		this.dir = path.resolve(dir);
		this.method = method;
		this.maxBytes = maxBytes;
		this.remote = resolveRemoteOptions(options.remote);
	}

	/** Removes every entry. */
	async clear(): Promise<void> {
		await clearStore(this.dir);
	}

	/** Removes the least recently used entries until the cache fits in `maxBytes`. */
	async prune(maxBytes = this.maxBytes): Promise<PruneResult> {
		checkCount('maxBytes', maxBytes, 0);
		return pruneStore(this.dir, maxBytes);
	}
}

export function toCache(value: Cache | CacheOptions): Cache {
	return value instanceof Cache ? value : new Cache(value);
}
