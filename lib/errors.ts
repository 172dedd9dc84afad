import { inspect } from 'node:util';

export type ErrorCode =
	| 'FLOWCAT_STEP_FAILED'
	| 'FLOWCAT_INPUT_FAILED'
	| 'FLOWCAT_WRITER_FAILED'
	| 'FLOWCAT_OUTPUT_FAILED'
	| 'FLOWCAT_INVALID_OPTION'
	| 'FLOWCAT_CACHE_UNREADABLE'
	| 'ABORT_ERR';

interface FlowcatErrorDetails {
	code: ErrorCode;
	cause?: unknown;
	path?: string;
	step?: string;
	stepIndex?: number;
	stepKind?: string;
}

// Base of every error flowcat raises at run time; the original error stays in `cause`.
export class FlowcatError extends Error {
	readonly code: ErrorCode;
	/** The flow's input path (relative to cwd) or name. */
	declare readonly path?: string;
	/** The failing step's name. */
	declare readonly step?: string;
	/** The failing step's position, counting from 1. */
	declare readonly stepIndex?: number;
	/** What the failing step turned out to be: 'sync function', 'child process', ... */
	declare readonly stepKind?: string;

	constructor(message: string, details: FlowcatErrorDetails) {
		super(message, details.cause === undefined ? undefined : { cause: details.cause });
		this.name = 'FlowcatError';
		this.code = details.code;
		// Only what is known, so a printed error shows no empty fields.
		for (const name of ['path', 'step', 'stepIndex', 'stepKind'] as const) {
			if (details[name] !== undefined) {
				Object.assign(this, { [name]: details[name] });
			}
		}
	}
}

// Raised when a run is stopped through its AbortSignal; `cause` is the signal's reason.
export class AbortError extends Error {
	readonly code = 'ABORT_ERR';

	constructor(reason?: unknown) {
		super('The flowcat run was aborted', reason === undefined ? undefined : { cause: reason });
		this.name = 'AbortError';
	}
}

export function isAbortError(error: unknown): boolean {
	return error instanceof Error && error.name === 'AbortError';
}

// Thrown values that are not Errors (a string, an object) become Errors so `cause` is always one.
export function toError(value: unknown): Error {
	if (value instanceof Error) {
		return value;
	}

	const error = new Error(`Non-error value thrown: ${describeValue(value)}`);
	(error as Error & { value: unknown }).value = value;
	return error;
}

export function describeValue(value: unknown): string {
	if (value === null) {
		return 'null';
	}

	if (typeof value === 'object' || typeof value === 'function') {
		return `${inspect(value, { depth: 0, breakLength: Infinity }).slice(0, 80)} (${typeof value})`;
	}

	return `${String(value).slice(0, 80)} (${typeof value})`;
}

function optionError<T extends Error>(ErrorClass: new (message: string) => T, message: string): T {
	const error = new ErrorClass(message);
	(error as T & { code: string }).code = 'FLOWCAT_INVALID_OPTION';
	return error;
}

// A TypeError for a bad argument: names it, says what was expected and what came instead.
export function invalidType(name: string, expected: string, value: unknown): TypeError {
	return optionError(TypeError, `Expected \`${name}\` to be ${expected}, instead got ${describeValue(value)}`);
}

// A RangeError for an argument of the right type but outside the accepted range.
export function invalidRange(name: string, expected: string, value: unknown): RangeError {
	return optionError(RangeError, `Expected \`${name}\` to be ${expected}, instead got ${describeValue(value)}`);
}

// Reading a flow's input failed: a missing file, a directory, a stream that errored.
export function inputError(label: string, cause: unknown): FlowcatError {
	const error = toError(cause);
	return new FlowcatError(`Could not read the input of ${label}: ${error.message}`, { code: 'FLOWCAT_INPUT_FAILED', path: label, cause: error });
}

export function outputError(label: string, cause: unknown): FlowcatError {
	const error = toError(cause);
	return new FlowcatError(`Could not write the output of ${label}: ${error.message}`, { code: 'FLOWCAT_OUTPUT_FAILED', path: label, cause: error });
}
