import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { isThenable } from './check';
import { FlowcatError, isAbortError, toError } from './errors';
import type { OutputGate } from './output-gate';

/**
 * Writes its part of the output (a header, a separator, a footer) when its turn comes.
 * Declared with two parameters it calls `done` when finished; otherwise it returns (or resolves).
 * One signature, so an inline `(out) => ...` gets its parameter's type.
 */
export type Writer = (out: Writable, done: (error?: Error | null) => void) => void | Promise<void>;

// Runs a run's writers, one at a time, with a Writable that forwards to the gate, so their
// bytes are counted, keep their order, and respect the output's backpressure; a writer cannot
// end the real output. The Writable is reused from writer to writer (a separator between
// thousands of files is a writer each) unless one ended or broke it.
export class WriterRunner {
	private readonly gate: OutputGate;
	private out?: Writable;

	constructor(gate: OutputGate) {
		this.gate = gate;
	}

	/** Runs a writer; returns a promise only when it has to be waited for (most write at once). */
	run(writer: Writer, position: number): Promise<void> | undefined {
		const out = this.takeOut();
		let returned: unknown;
		try {
			if (writer.length === 2) {
				return this.settle(writer, position, out, new Promise<void>((resolve, reject) => {
					void writer(out, (error) => {
						if (error) {
							reject(error);
						} else {
							resolve();
						}
					});
				}));
			}

			returned = writer(out, () => undefined);
		} catch (cause) {
			throw this.failure(writer, position, out, cause);
		}

		// A synchronous writer whose writes all reached the gate at once is done.
		if (!isThenable(returned) && !out.errored && !out.writableEnded && out.writableLength === 0) {
			return undefined;
		}

		return this.settle(writer, position, out, returned);
	}

	private async settle(writer: Writer, position: number, out: Writable, returned: unknown): Promise<void> {
		try {
			await returned;
			if (out.errored) {
				throw out.errored;
			}

			// Wait until the writer's writes have reached the gate (most did at once): an empty
			// write's callback comes after theirs.
			if (out.writableEnded) {
				this.out = undefined;
				await finished(out);
			} else if (out.writableLength > 0) {
				await new Promise<void>((resolve, reject) => {
					out.write(Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
				});
			}
		} catch (cause) {
			throw this.failure(writer, position, out, cause);
		}
	}

	private failure(writer: Writer, position: number, out: Writable, cause: unknown): Error {
		this.out = undefined;
		out.destroy();
		if (isAbortError(cause) || cause instanceof FlowcatError) {
			return cause as Error;
		}

		const error = toError(cause);
		const name = writer.name ? ` "${writer.name}"` : '';
		return new FlowcatError(`Writer${name} (item ${position}) failed: ${error.message}`, { code: 'FLOWCAT_WRITER_FAILED', cause: error });
	}

	private takeOut(): Writable {
		if (!this.out || this.out.destroyed) {
			const gate = this.gate;
			this.out = new Writable({
				write(chunk: Buffer, _encoding, callback) {
					let drained: Promise<void> | undefined;
					try {
						drained = chunk.length === 0 ? undefined : gate.write(chunk);
					} catch (error) {
						callback(toError(error));
						return;
					}

					if (drained) {
						drained.then(() => callback(), callback);
					} else {
						callback();
					}
				},
			});
			// Failures reach the writer through its write callbacks and the run through `errored`.
			this.out.on('error', () => undefined);
		}

		return this.out;
	}
}
