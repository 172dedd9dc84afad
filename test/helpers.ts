import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { listPacks, readPackIndex, type PackedEntry } from '../lib/cache/pack';

export const fixtures = path.join(__dirname, 'fixtures');

export function fixture(name: string): string {
	return path.join(fixtures, name);
}

// A fresh temp dir for one test, removed after it.
export async function createTempDir(t: TestContext): Promise<string> {
	const dir = await mkdtemp(path.join(tmpdir(), 'flowcat-test-'));
	t.after(() => rm(dir, { recursive: true, force: true }));
	return dir;
}

// A Writable that keeps what it gets, for asserting on the bytes a run wrote.
export function createCollector(): Writable & { text: () => string; buffer: () => Buffer; writes: number } {
	const chunks: Buffer[] = [];
	const collector = new Writable({
		write(chunk: Buffer, _encoding, callback) {
			chunks.push(chunk);
			collector.writes += 1;
			callback();
		},
	}) as Writable & { text: () => string; buffer: () => Buffer; writes: number };
	collector.writes = 0;
	collector.buffer = () => Buffer.concat(chunks);
	collector.text = () => collector.buffer().toString();
	return collector;
}

export function delay(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

export function openFileDescriptors(): number {
	return readdirSync('/proc/self/fd').length;
}

export async function listDir(dir: string): Promise<string[]> {
	return readdir(dir, { recursive: true });
}

export function isRunning(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
	let resolve!: () => void;
	const promise = new Promise<void>((done) => {
		resolve = done;
	});
	return { promise, resolve };
}

// The ids a cache folder's pack indexes name (small entries in packs, large ones in files).
export function storedIds(cacheDir: string): string[] {
	const entries = new Map<string, PackedEntry>();
	for (const pack of listPacks(cacheDir)) {
		readPackIndex(pack, entries);
	}

	return [...entries.keys()];
}

// The process warnings emitted while `action` runs (and just after: warnings are emitted on
// the next tick).
export async function captureWarnings(action: () => Promise<void>): Promise<Array<{ code?: string; message: string }>> {
	const warnings: Array<{ code?: string; message: string }> = [];
	const onWarning = (warning: Error & { code?: string }) => warnings.push({ code: warning.code, message: warning.message });
	process.on('warning', onWarning);
	try {
		await action();
		await delay(10);
	} finally {
		process.off('warning', onWarning);
	}

	return warnings;
}
