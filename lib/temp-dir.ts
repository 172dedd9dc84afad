import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';

// One temp folder per run, made on first use and removed whole when the run ends.
export class TempDir {
	private readonly parent: string;
	private created?: Promise<string>;
	private count = 0;

	constructor(parent: string) {
		this.parent = parent;
	}

	async newFile(): Promise<string> {
		this.created ??= mkdtemp(path.join(this.parent, 'flowcat-'));
		const folder = await this.created;
		this.count += 1;
		return path.join(folder, String(this.count));
	}

	async remove(): Promise<void> {
		const folder = await this.created?.catch(() => undefined);
		if (folder) {
			await rm(folder, { recursive: true, force: true });
		}
	}
}
