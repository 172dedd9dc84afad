import type { ChildProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { invalidType } from './errors';

/** A sync or promise function: gets the whole input as a utf8 string. */
export type FunctionStep = (input: string) => string | Buffer | Promise<string | Buffer>;
/** A callback function: `done(error, output)`; only its first call counts. */
export type CallbackStep = (input: string, done: (error?: unknown, output?: string | Buffer) => void) => void;
/**
 * A factory called when the flow runs. It returns a byte Transform/Duplex, a ChildProcess
 * (`spawn(...)`, bytes through stdin and stdout) or an object-mode stream (a gulp plugin).
 */
export type FactoryStep = () => Duplex | ChildProcess | NodeJS.ReadWriteStream;
export type Step = FunctionStep | CallbackStep | FactoryStep;

export type StepShape = 'function' | 'callback' | 'factory';

export interface StepSpec {
	run: Step;
	shape: StepShape;
	/** Position counting from 1. */
	position: number;
	count: number;
	name: string;
}

// Steps are recognised by arity once, when the flow is created, so a bad list fails at once.
export function describeSteps(steps: unknown): StepSpec[] {
	if (!Array.isArray(steps)) {
		throw invalidType('steps', 'an array of step functions', steps);
	}

	return steps.map((step: unknown, index) => {
		if (typeof step !== 'function') {
			throw invalidType(`steps[${index}]`, 'a function (a step or a factory returning a stream or child process)', step);
		}

		const shape: StepShape = step.length === 0 ? 'factory' : step.length === 2 ? 'callback' : 'function';
		if (step.length > 2) {
			throw invalidType(`steps[${index}]`, 'a function of 0, 1 or 2 parameters', step);
		}

		return { run: step as Step, shape, position: index + 1, count: steps.length, name: step.name };
	});
}

// 'Step 2 of 3 (stream)' or 'Step "minify" (2 of 3, gulp plugin)': the position always, the name when the function has one.
export function stepLabel(spec: StepSpec, kind: string): string {
	const position = `${spec.position} of ${spec.count}`;
	return spec.name ? `Step "${spec.name}" (${position}, ${kind})` : `Step ${position} (${kind})`;
}
