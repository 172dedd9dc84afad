import { hash } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import { inputError } from '../errors';
import type { Flow } from '../flow';
import { flowInput } from '../flow';
import type { Input } from '../input';
import { readSmallFile } from '../read-small-file';
import type { StepSpec } from '../steps';
import { flowcatVersion } from '../version';

export type CacheMethod = 'stat' | 'md5' | 'sha1' | 'sha256' | 'sha512';
export const cacheMethods: readonly CacheMethod[] = ['stat', 'md5', 'sha1', 'sha256', 'sha512'];

// Bumped when the entry format or the meaning of a key changes: old entries are then misses.
const keyFormat = 'flowcat-cache-1';
// File systems stamp mtimes coarsely (a few ms): a file changed twice within one stamp keeps
// its size and mtime. A result stored this soon after its input changed is keyed by contents.
const racyWindowMs = 2000;

export interface CacheIdentity {
	/** sha256 hex: names the entry, never a path built from user input. */
	id: string;
	/** The input to run the flow with: a file already read for its digest is not read again. */
	input: Input;
	/**
	 * For a stat-keyed file: its contents' key, computed on demand. A result stored while the
	 * file was fresh is found under it; a hit there is then linked under `id` for next time.
	 */
	byContents?: () => Promise<CacheIdentity>;
	/** Keyed by contents, not by this machine's mtimes: the id other machines would compute. */
	portable: boolean;
}

// What a result depends on: the flow's key, and its input's path and state (stat or digest).
// Undefined for a stream with nothing to key it by: that flow is not cached.
export async function identifyFlow(flow: Flow, method: CacheMethod, label: () => string): Promise<CacheIdentity | undefined> {
	const input = flow[flowInput];
	const flowKey = flow.key ?? digestSteps(flow.steps);
	// A new flowcat may change what steps produce (a fix in a step kind): results are not shared across versions.
	const id = (...parts: unknown[]) => sha256(JSON.stringify([keyFormat, flowcatVersion(), flowKey, ...parts]));
	const digestMethod = method === 'stat' ? 'sha256' : method;

	if (input.type === 'buffer') {
		// Contents in memory may differ from the file on disk (an earlier plugin changed them): digest them.
		return { id: id(relativePath(input.file?.path, input.file?.cwd), digest(digestMethod, input.buffer)), input, portable: true };
	}

	if (input.type === 'stream') {
		const stats = input.file?.stat;
		if (method !== 'stat' || !input.file?.path || !stats?.mtime) {
			return undefined;
		}

		return { id: id(relativePath(input.file.path, input.file.cwd), stats.size, stats.mtime.getTime()), input, portable: false };
	}

	const relative = relativePath(input.path);
	try {
		// Small synchronous calls: far cheaper than a trip through libuv's thread pool.
		const stats = statSync(input.path, { bigint: true });
		if (!stats.isFile()) {
			throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${input.path}'`), { code: 'EISDIR' });
		}

		const byContents = async (): Promise<CacheIdentity> => {
			const buffer = await readSmallFile(input.path, Number(stats.size));
			return { id: id(relative, digest(digestMethod, buffer)), input: { type: 'buffer', buffer }, portable: true };
		};

		const isFresh = Date.now() - Number(stats.mtimeMs) < racyWindowMs;
		if (method !== 'stat' || isFresh) {
			return await byContents();
		}

		return { id: id(relative, 'stat', String(stats.size), String(stats.mtimeNs)), input, byContents, portable: false };
	} catch (error) {
		throw inputError(label(), error);
	}
}

// crypto.hash, one call with no Hash object: the cheapest way to hash the small inputs of each flow.
function digest(algorithm: string, buffer: Buffer): string {
	return `${algorithm}:${hash(algorithm, buffer, 'hex')}`;
}

export function sha256(text: string | Buffer): string {
	return hash('sha256', text, 'hex');
}

// The default key: the steps' source text. Options a step closes over are not in it;
// that is what `key` is for.
function digestSteps(steps: readonly StepSpec[]): string {
	return sha256(steps.map((step) => step.run.toString()).join('\u0000'));
}

// Relative, so that checkouts in different folders share digest-keyed results.
function relativePath(filePath: string | undefined, cwd = process.cwd()): string | null {
	if (filePath === undefined) {
		return null;
	}

	// The common case, a file under cwd, without path.relative's resolving of both paths.
	const relative = filePath.startsWith(cwd + path.sep) ? filePath.slice(cwd.length + 1) : path.relative(cwd, filePath);
	return path.sep === '/' ? relative : relative.split(path.sep).join('/');
}
