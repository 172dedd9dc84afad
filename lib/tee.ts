import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

// Writes every chunk to `primary` and, while it keeps working, to `secondary`. A failure of
// the secondary (a cache that cannot be written) is reported once and never fails the flow.
export function createTee(primary: Writable, secondary: Writable, onSecondaryError: (error: Error) => void): Writable {
	let secondaryFailed = false;
	const failSecondary = (error: Error) => {
		if (!secondaryFailed) {
			secondaryFailed = true;
			secondary.destroy();
			onSecondaryError(error);
		}
	};

	secondary.on('error', failSecondary);
	return new Writable({
		highWaterMark: primary.writableHighWaterMark,
		write(chunk: Buffer, _encoding, callback) {
			let waiting = secondaryFailed ? 1 : 2;
			let primaryError: Error | null | undefined;
			const onWritten = () => {
				waiting -= 1;
				if (waiting === 0) {
					callback(primaryError);
				}
			};

			primary.write(chunk, (error) => {
				primaryError = error;
				onWritten();
			});
			if (!secondaryFailed) {
				secondary.write(chunk, (error) => {
					if (error) {
						failSecondary(error);
					}

					onWritten();
				});
			}
		},
		final(callback) {
			primary.end();
			if (!secondaryFailed) {
				secondary.end();
			}

			Promise.all([
				finished(primary),
				secondaryFailed ? undefined : finished(secondary).catch(failSecondary),
			]).then(() => callback(), callback);
		},
		destroy(error, callback) {
			primary.destroy(error ?? undefined);
			secondary.destroy();
			callback(error);
		},
	});
}
