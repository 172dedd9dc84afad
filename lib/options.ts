import { tmpdir } from 'node:os';
import { invalidRange, invalidType } from './errors';

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
}

export interface ResolvedConcatOptions {
	limit: number;
	end: boolean;
	signal?: AbortSignal;
	maxMemoryBytes: number;
	tempDir: string;
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

	const { limit = defaultLimit, end = true, signal, maxMemoryBytes = defaultMaxMemoryBytes, tempDir = tmpdir() } = options;
	checkCount('limit', limit);
	checkCount('maxMemoryBytes', maxMemoryBytes, 0);
	if (typeof end !== 'boolean') {
		throw invalidType('end', 'a boolean', end);
	}

	if (signal !== undefined && !(signal instanceof AbortSignal)) {
		throw invalidType('signal', 'an AbortSignal', signal);
	}

	if (typeof tempDir !== 'string' || tempDir === '') {
		throw invalidType('tempDir', 'a non-empty string', tempDir);
	}

	return { limit, end, signal, maxMemoryBytes, tempDir };
}

export function checkCount(name: string, value: unknown, minimum = 1): asserts value is number {
	if (typeof value !== 'number') {
		throw invalidType(name, `a number from ${minimum} up`, value);
	}

	if (Number.isNaN(value) || value < minimum || (!Number.isInteger(value) && value !== Infinity)) {
		throw invalidRange(name, `a whole number from ${minimum} up`, value);
	}
}
