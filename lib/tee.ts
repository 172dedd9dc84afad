import { once } from 'node:events';
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
			// After a clean finish (auto-destroy) the branches are done and the entry awaits its commit.
			if (!error && this.writableFinished) {
				callback(null);
				return;
			}

			// The error is the tee's to report; the branches only stop (nobody listens on them).
			// The tee closes after its branches, so a run that waits for it leaves no temp file.
			const closed = [primary, secondary].map((branch) => (branch.closed ? undefined : once(branch, 'close')));
			primary.destroy();
			secondary.destroy();
			Promise.all(closed).then(() => callback(error), () => callback(error));
		},
	});
}
