import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { FlowcatError, isAbortError, toError } from './errors';
import type { OutputGate } from './output-gate';

/**
 * Writes its part of the output (a header, a separator, a footer) when its turn comes.
 * Declared with two parameters it calls `done` when finished; otherwise it returns (or resolves).
 * One signature, so an inline `(out) => ...` gets its parameter's type.
 */
export type Writer = (out: Writable, done: (error?: Error | null) => void) => void | Promise<void>;

// Runs one writer with a Writable that forwards to the gate, so its bytes are counted, keep
// their order, and respect the output's backpressure; the writer cannot end the real output.
export async function runWriter(writer: Writer, gate: OutputGate, position: number): Promise<void> {
	const out = new Writable({
		write(chunk: Buffer, _encoding, callback) {
			if (chunk.length === 0) {
				callback();
				return;
			}

			gate.write(chunk).then(() => callback(), callback);
		},
	});
	try {
		if (writer.length === 2) {
			await new Promise<void>((resolve, reject) => {
				void writer(out, (error) => {
					if (error) {
						reject(error);
					} else {
						resolve();
					}
				});
			});
		} else {
			await writer(out, () => undefined);
		}

		// Wait until the writer's writes have reached the gate: an empty write's callback comes
		// after theirs (cheaper than end() and waiting for finish, once per writer).
		if (out.writableEnded) {
			await finished(out);
		} else {
			await new Promise<void>((resolve, reject) => {
				out.write(Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
			});
		}
	} catch (cause) {
		out.destroy();
		if (isAbortError(cause) || cause instanceof FlowcatError) {
			throw cause;
		}

		const error = toError(cause);
		const name = writer.name ? ` "${writer.name}"` : '';
		throw new FlowcatError(`Writer${name} (item ${position}) failed: ${error.message}`, { code: 'FLOWCAT_WRITER_FAILED', cause: error });
	}
}
