import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import through2 from 'through2';
import type File from 'vinyl';
import { concat, Flow, type Item, type Step, type Writer } from '../lib/index';
import { createCollector, createTempDir, delay, listDir } from './helpers';

// Each step kind, with what it does to a string: flowcat's output must equal the reference
// computed by applying these in order, without flowcat.
const stepKinds = {
	append: { reference: (text: string) => `${text}+`, create: (): Step => (text: string) => `${text}+` },
	upperAsync: {
		reference: (text: string) => text.toUpperCase(),
		create: (delayMs = 0): Step => async (text: string) => {
			await delay(delayMs);
			return text.toUpperCase();
		},
	},
	reverseCallback: {
		reference: (text: string) => [...text].reverse().join(''),
		create: (delayMs = 0): Step => (text: string, done: (error: null, output: string) => void) => {
			setTimeout(() => done(null, [...text].reverse().join('')), delayMs);
		},
	},
	lowerTransform: {
		reference: (text: string) => text.toLowerCase(),
		create: (): Step => () => new Transform({
			transform(chunk: Buffer, _encoding, callback) {
				callback(null, chunk.toString().toLowerCase());
			},
		}),
	},
	cat: { reference: (text: string) => text, create: (): Step => () => spawn('cat') },
	tr: { reference: (text: string) => text.replaceAll('a', 'b'), create: (): Step => () => spawn('tr', ['a', 'b']) },
	plugin: {
		reference: (text: string) => `>${text}`,
		create: (): Step => () => through2.obj((file: File, _encoding, callback) => {
			file.contents = Buffer.concat([Buffer.from('>'), file.contents as Buffer]);
			callback(null, file);
		}),
	},
} as const;
type StepKind = keyof typeof stepKinds;

interface FlowSpec {
	type: 'flow';
	input: string;
	inputKind: 'string' | 'buffer' | 'stream' | 'file';
	steps: Array<{ kind: StepKind; delayMs: number }>;
}

interface WriterSpec {
	type: 'writer';
	text: string;
	shape: 'sync' | 'async' | 'callback';
}

const text = fc.stringMatching(/^[a-zA-Z \n]{0,30}$/);
const flowSpec: fc.Arbitrary<FlowSpec> = fc.record({
	type: fc.constant('flow' as const),
	input: text,
	inputKind: fc.constantFrom('string', 'buffer', 'stream', 'file'),
	steps: fc.array(fc.record({
		kind: fc.constantFrom(...(Object.keys(stepKinds) as StepKind[])),
		delayMs: fc.integer({ min: 0, max: 8 }),
	}), { maxLength: 4 }),
});
const writerSpec: fc.Arbitrary<WriterSpec> = fc.record({
	type: fc.constant('writer' as const),
	text,
	shape: fc.constantFrom('sync', 'async', 'callback'),
});
const runSpec = fc.record({
	items: fc.array(fc.oneof(flowSpec, writerSpec), { maxLength: 7 }),
	limit: fc.integer({ min: 1, max: 6 }),
	cached: fc.boolean(),
});

function reference(items: Array<FlowSpec | WriterSpec>): string {
	return items.map((item) => (item.type === 'writer' ? item.text : item.steps.reduce((current, step) => stepKinds[step.kind].reference(current), item.input))).join('');
}

function createWriter(spec: WriterSpec): Writer {
	if (spec.shape === 'callback') {
		return (out, done) => {
			out.write(spec.text);
			setTimeout(() => done(), 1);
		};
	}

	return spec.shape === 'async'
		? async (out) => {
			await delay(1);
			out.write(spec.text);
		}
		: (out) => {
			out.write(spec.text);
		};
}

async function createItems(specs: Array<FlowSpec | WriterSpec>, dir: string, failAt?: number): Promise<Item[]> {
	return Promise.all(specs.map(async (spec, index) => {
		if (spec.type === 'writer') {
			return createWriter(spec);
		}

		const steps = spec.steps.map((step) => stepKinds[step.kind].create(step.delayMs));
		if (index === failAt) {
			steps.splice(steps.length >> 1, 0, (_text: string) => {
				throw new Error('injected failure');
			});
		}

		const flow = new Flow(steps);
		if (spec.inputKind === 'string') {
			return flow.input(spec.input);
		}

		if (spec.inputKind === 'buffer') {
			return flow.input(Buffer.from(spec.input));
		}

		if (spec.inputKind === 'stream') {
			return flow.input(Readable.from(spec.input ? [Buffer.from(spec.input)] : []));
		}

		const filePath = path.join(dir, `input${index}.txt`);
		await writeFile(filePath, spec.input);
		await utimes(filePath, new Date('2024-01-01T00:00:00Z'), new Date('2024-01-01T00:00:00Z'));
		return flow.inputFile(filePath);
	}));
}

test('Any mix of writers, flows, steps, limits and caching gives the sequential reference output', { timeout: 240_000 }, async (t) => {
	const dir = await createTempDir(t);
	let round = 0;
	await fc.assert(fc.asyncProperty(runSpec, async ({ items, limit, cached }) => {
		round += 1;
		const roundDir = path.join(dir, String(round));
		const tempDir = path.join(roundDir, 'tmp');
		await mkdir(tempDir, { recursive: true });
		const expected = reference(items);
		// With a cache, run twice: the second run must give the same bytes from stored results.
		for (let run = 0; run < (cached ? 2 : 1); run += 1) {
			const output = createCollector();
			await concat(output, await createItems(items, roundDir), { limit, tempDir, maxMemoryBytes: 64, cache: cached ? { dir: path.join(roundDir, 'cache') } : undefined });
			assert.equal(output.text(), expected);
			assert.deepEqual(await listDir(tempDir), []);
		}
	}), { numRuns: 40 });
});

test('Any such run with one failing step rejects and writes nothing', { timeout: 240_000 }, async (t) => {
	const dir = await createTempDir(t);
	let round = 0;
	const withFlow = runSpec.filter(({ items }) => items.some((item) => item.type === 'flow'));
	await fc.assert(fc.asyncProperty(withFlow, fc.nat(), async ({ items, limit, cached }, pick) => {
		round += 1;
		const roundDir = path.join(dir, String(round));
		const tempDir = path.join(roundDir, 'tmp');
		await mkdir(tempDir, { recursive: true });
		const flowIndexes = items.flatMap((item, index) => (item.type === 'flow' ? [index] : []));
		const failAt = flowIndexes[pick % flowIndexes.length];
		const output = createCollector();
		await assert.rejects(concat(output, await createItems(items, roundDir, failAt), { limit, tempDir, maxMemoryBytes: 64, cache: cached ? { dir: path.join(roundDir, 'cache') } : undefined }), /injected failure/);
		assert.equal(output.writes, 0);
		assert.deepEqual(await listDir(tempDir), []);
	}), { numRuns: 30 });
});
