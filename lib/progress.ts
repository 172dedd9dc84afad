import { loadFancyLog } from './lazy-modules';

const showAfterMs = 1000;
const redrawMs = 100;

// On an interactive terminal, a run that takes more than a second shows "done/total" on
// stderr, on one line that the summary replaces.
export class Progress {
	private readonly label: string;
	private readonly started = performance.now();
	private readonly enabled = Boolean(process.stderr.isTTY) && !process.env.CI;
	private lastDrawMs = 0;
	private drawn = false;

	constructor(label: string) {
		this.label = label;
	}

	update(settled: number, total: number): void {
		const now = performance.now();
		if (!this.enabled || now - this.started < showAfterMs || now - this.lastDrawMs < redrawMs) {
			return;
		}

		this.lastDrawMs = now;
		this.drawn = true;
		process.stderr.write(`\r${this.label}: ${settled}/${total} flows`);
	}

	finish(summary: string): void {
		if (this.drawn) {
			process.stderr.write('\r\u001B[2K');
		}

		loadFancyLog()(`${this.label}: ${summary} in ${Math.round(performance.now() - this.started)} ms`);
	}

	clear(): void {
		if (this.drawn) {
			process.stderr.write('\r\u001B[2K');
		}
	}
}
