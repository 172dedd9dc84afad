import { invalidRange, invalidType } from './errors';

// A count option: a whole number from `minimum` up (Infinity allowed); TypeError or RangeError otherwise.
export function checkCount(name: string, value: unknown, minimum = 1): asserts value is number {
	if (typeof value !== 'number') {
		throw invalidType(name, `a number from ${minimum} up`, value);
	}

	if (Number.isNaN(value) || value < minimum || (!Number.isInteger(value) && value !== Infinity)) {
		throw invalidRange(name, `a whole number from ${minimum} up`, value);
	}
}

export function isThenable(value: unknown): value is Promise<unknown> {
	return typeof (value as Promise<unknown> | null)?.then === 'function';
}
