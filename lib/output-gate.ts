import { once } from 'node:events';
import { FlowcatError, toError } from './errors';

// The one way bytes reach the run's output: counts them, waits for `drain`, and turns an
// `error` from the output, at any moment of the run, into a failure of the run.
export class OutputGate {
	bytes = 0;
	readonly output: NodeJS.WritableStream;
	private readonly controller: AbortController;
	private readonly onError: (error: unknown) => void;

	constructor(output: NodeJS.WritableStream, controller: AbortController) {
		this.output = output;
		this.controller = controller;
		this.onError = (cause: unknown) => {
			const error = toError(cause);
			controller.abort(new FlowcatError(`The output stream failed: ${error.message}`, { code: 'FLOWCAT_OUTPUT_FAILED', cause: error }));
		};

		output.on('error', this.onError);
	}

	async write(chunk: Buffer): Promise<void> {
		const { signal } = this.controller;
		signal.throwIfAborted();
		if (isClosed(this.output)) {
			throw new FlowcatError('The output stream was closed before the run finished writing', { code: 'FLOWCAT_OUTPUT_FAILED' });
		}

		const hasRoom = this.output.write(chunk);
		this.bytes += chunk.length;
		if (!hasRoom) {
			try {
				await once(this.output, 'drain', { signal });
			} catch (error) {
				throw signal.aborted ? signal.reason : error;
			}
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
		output.end();
		await finished;
	}

	detach(): void {
		this.output.off('error', this.onError);
	}
}

function isClosed(output: NodeJS.WritableStream): boolean {
	const candidate = output as { destroyed?: boolean; writableEnded?: boolean };
	return Boolean(candidate.destroyed || candidate.writableEnded);
}
