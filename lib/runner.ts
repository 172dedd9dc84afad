import { invalidType } from './errors';
import { Flow } from './flow';
import { resolveConcatOptions, type ConcatOptions } from './options';
import { Run, type Item, type Summary } from './run';

export type { Item, Summary } from './run';

// Runs the flows in parallel (at most `limit` at once), then writes every item's bytes to
// `output` in the order of `items`. Nothing is written unless every flow succeeded.
export async function concat(output: NodeJS.WritableStream, items: Item[], options?: ConcatOptions): Promise<Summary> {
	checkOutput(output);
	checkItems(items);
	const run = new Run(output, resolveConcatOptions(options), {});
	for (const item of items) {
		run.add(item);
	}

	return run.finish();
}

export function checkOutput(output: unknown): void {
	const candidate = output as NodeJS.WritableStream | null;
	if (typeof candidate?.write !== 'function' || typeof candidate.on !== 'function' || typeof candidate.end !== 'function') {
		throw invalidType('output', 'a writable stream', output);
	}
}

export function checkItems(items: unknown): asserts items is Item[] {
	if (!Array.isArray(items)) {
		throw invalidType('items', 'an array of flows and writer functions', items);
	}

	for (const [index, item] of items.entries()) {
		if (!(item instanceof Flow) && typeof item !== 'function') {
			throw invalidType(`items[${index}]`, 'a Flow or a writer function', item);
		}

		if (typeof item === 'function' && item.length > 2) {
			throw invalidType(`items[${index}]`, 'a writer function of 0, 1 or 2 parameters', item);
		}
	}
}
