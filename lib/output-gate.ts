import { once } from 'node:events';
import { WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { chunkBytes } from './buffered-file';
import { FlowcatError, toError } from './errors';

const corkBelowBytes = 64 * 1024;

// The one way bytes reach the run's output: counts them, waits for `drain`, and turns an
// `error` from the output, at any moment of the run, into a failure of the run.
export class OutputGate {
	bytes = 0;
	readonly output: NodeJS.WritableStream;
	/** A file stream lets go of a chunk once it is written, so its buffer may be reused then. */
	readonly releasesChunks: boolean;
	private corkedBytes = 0;
	private readonly controller: AbortController;
	private readonly onError: (error: unknown) => void;

	constructor(output: NodeJS.WritableStream, controller: AbortController) {
		this.output = output;
		this.releasesChunks = output instanceof WriteStream;
		this.controller = controller;
		this.onError = (cause: unknown) => {
			const error = toError(cause);
			controller.abort(new FlowcatError(`The output stream failed: ${error.message}`, { code: 'FLOWCAT_OUTPUT_FAILED', cause: error }));
		};

		output.on('error', this.onError);
	}

	/**
	 * Writes a chunk; returns a promise only when the output is full, to wait for `drain`
	 * (a separator between thousands of files is a write each). Throws when the run is over.
	 */
	write(chunk: Buffer, onWritten?: () => void): Promise<void> | undefined {
		const { signal } = this.controller;
		signal.throwIfAborted();
		if (isClosed(this.output)) {
			throw new FlowcatError('The output stream was closed before the run finished writing', { code: 'FLOWCAT_OUTPUT_FAILED' });
		}

		// Small chunks (a separator, a small file) are corked, so the output gets them in one
		// writev of about 1 MiB instead of a syscall each.
		const output = this.output as Writable;
		if (output.writableCorked === 0 && chunk.length < corkBelowBytes) {
			output.cork();
		}

		const hasRoom = output.write(chunk, onWritten);
		this.bytes += chunk.length;
		this.corkedBytes += chunk.length;
		if (hasRoom && this.corkedBytes < chunkBytes) {
			return undefined;
		}

		this.flush();
		return hasRoom ? undefined : this.drained();
	}

	private async drained(): Promise<void> {
		const { signal } = this.controller;
		try {
			await once(this.output, 'drain', { signal });
		} catch (error) {
			throw signal.aborted ? signal.reason : error;
		}
	}

	/** Sends what is corked; the run calls it before it waits, and at the end. */
	flush(): void {
		const output = this.output as Writable;
		this.corkedBytes = 0;
		while (output.writableCorked > 0) {
			output.uncork();
		}
	}

	// Ends the output (never process.stdout or stderr) and waits until it has finished.
	async end(): Promise<void> {
		const output = this.output;
		if (output === process.stdout || output === process.stderr) {
			return;
		}

		const { signal } = this.controller;
		const finished = once(output, 'finish', { signal }).catch((error: unknown) => {
			throw signal.aborted ? signal.reason : error;
		});
		this.flush();
		output.end();
		await finished;
	}

	detach(): void {
		this.flush();
		this.output.off('error', this.onError);
	}
}

function isClosed(output: NodeJS.WritableStream): boolean {
	const candidate = output as { destroyed?: boolean; writableEnded?: boolean };
	return Boolean(candidate.destroyed || candidate.writableEnded);
}
