import type { ChildProcess } from 'node:child_process';
import { Duplex } from 'node:stream';

const stderrTailBytes = 2048;
const killGraceMs = 2000;

export function isChildProcess(value: unknown): value is ChildProcess {
	const candidate = value as ChildProcess | null;
	return typeof candidate === 'object' && candidate !== null
		&& typeof candidate.kill === 'function'
		&& typeof candidate.once === 'function'
		&& 'stdin' in candidate && 'stdout' in candidate && 'spawnargs' in candidate;
}

export function describeCommand(child: ChildProcess): string {
	return child.spawnargs.join(' ');
}

// A Duplex over a child's stdin and stdout. Its readable side ends only after the child has
// exited with code 0, so a failing command fails the flow even when stdout already ended.
export class ChildProcessStream extends Duplex {
	private readonly child: ChildProcess;
	private stderrTail = Buffer.alloc(0);
	private exited = false;

	constructor(child: ChildProcess) {
		super({ allowHalfOpen: true });
		this.child = child;
		const { stdin, stdout, stderr } = child;
		if (!stdin || !stdout) {
			throw new TypeError(`Expected the child process to be spawned with piped stdin and stdout (stdio: 'pipe'): ${describeCommand(child)}`);
		}

		stdout.on('data', (chunk: Buffer) => {
			if (!this.push(chunk)) {
				stdout.pause();
			}
		});
		stderr?.on('data', (chunk: Buffer) => {
			this.stderrTail = Buffer.concat([this.stderrTail, chunk]).subarray(-stderrTailBytes);
		});
		// A command may stop reading early (head, a crash); its exit status decides, as in a shell.
		stdin.on('error', (error: NodeJS.ErrnoException) => {
			if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') {
				this.destroy(error);
			}
		});
		stdout.on('error', (error) => this.destroy(error));
		child.once('error', (error) => {
			this.exited ||= child.exitCode !== null || child.pid === undefined;
			this.destroy(error);
		});
		child.once('close', (code, signal) => {
			this.exited = true;
			this.onClose(code, signal);
		});
	}

	override _read(): void {
		this.child.stdout?.resume();
	}

	override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
		const stdin = this.child.stdin!;
		if (stdin.destroyed || !stdin.writable) {
			callback();
			return;
		}

		if (stdin.write(chunk)) {
			callback();
		} else {
			const onDone = () => {
				stdin.off('drain', onDone);
				stdin.off('close', onDone);
				callback();
			};

			stdin.on('drain', onDone);
			stdin.on('close', onDone);
		}
	}

	override _final(callback: (error?: Error | null) => void): void {
		this.child.stdin?.end();
		callback();
	}

	override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
		if (this.exited) {
			callback(error);
			return;
		}

		// Kill and wait, so no process outlives the flow that started it.
		const force = setTimeout(() => this.child.kill('SIGKILL'), killGraceMs);
		this.child.once('close', () => {
			clearTimeout(force);
			callback(error);
		});
		this.child.stdin?.destroy();
		this.child.kill('SIGTERM');
	}

	private onClose(code: number | null, signal: NodeJS.Signals | null): void {
		if (this.destroyed) {
			return;
		}

		if (code === 0) {
			this.push(null);
			return;
		}

		const reason = signal ? `was killed with ${signal}` : `failed with exit code ${code}`;
		const stderr = this.stderrTail.toString('utf8').trimEnd();
		const error = new Error(`Command ${reason}: ${describeCommand(this.child)}${stderr ? `\n${stderr}` : ''}`);
		Object.assign(error, { exitCode: code, signal, stderr });
		this.destroy(error);
	}
}
