import { tmpdir } from 'node:os';
import { Cache, toCache, type CacheOptions } from './cache/cache';
import { checkCount } from './check';
import { invalidType } from './errors';

export interface ConcatOptions {
	/** How many flows run at once. Default: 16. */
	limit?: number;
	/** End `output` when done (never process.stdout or stderr). Default: true. */
	end?: boolean;
	/** Stops the run: children killed, streams destroyed, temp files removed. */
	signal?: AbortSignal;
	/** How many bytes of finished outputs the run keeps in memory before using temp files. Default: 16 MiB. */
	maxMemoryBytes?: number;
	/** Where temp files go. Default: os.tmpdir(). */
	tempDir?: string;
	/** Reuse results of unchanged inputs across runs. Absent: no reuse. */
	cache?: Cache | CacheOptions;
	/**
	 * Write each item as soon as it and every item before it are done, while later flows still
	 * run. A failing flow then leaves the prefix already written. Default: false.
	 */
	early?: boolean;
}

export interface ResolvedConcatOptions {
	limit: number;
	end: boolean;
	signal?: AbortSignal;
	maxMemoryBytes: number;
	tempDir: string;
	cache?: Cache;
	early: boolean;
}

export const defaultLimit = 16;
export const defaultMaxMemoryBytes = 16 * 1024 * 1024;

// Every option's check and default in one place; bad values fail at once.
export function resolveConcatOptions(options: ConcatOptions | undefined): ResolvedConcatOptions {
	if (options === undefined) {
		options = {};
	} else if (typeof options !== 'object' || options === null) {
		throw invalidType('options', 'an object', options);
	}

	const { limit = defaultLimit, end = true, signal, maxMemoryBytes = defaultMaxMemoryBytes, tempDir = tmpdir(), cache, early = false } = options;
	checkCount('limit', limit);
	checkCount('maxMemoryBytes', maxMemoryBytes, 0);
	for (const [name, value] of Object.entries({ end, early })) {
		if (typeof value !== 'boolean') {
			throw invalidType(name, 'a boolean', value);
		}
	}

	if (signal !== undefined && !(signal instanceof AbortSignal)) {
		throw invalidType('signal', 'an AbortSignal', signal);
	}

	if (typeof tempDir !== 'string' || tempDir === '') {
		throw invalidType('tempDir', 'a non-empty string', tempDir);
	}

	return { limit, end, signal, maxMemoryBytes, tempDir, cache: cache === undefined ? undefined : toCache(cache), early };
}
