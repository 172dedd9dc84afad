export { Flow, Task, type FlowOptions, type FlowOutput, type FlowRunOptions } from './flow';
export type { Step, FunctionStep, CallbackStep, FactoryStep } from './steps';
export { concat, type Item, type Summary } from './runner';
export { concatToFile } from './concat-to-file';
export type { Writer } from './writer';
export type { ConcatOptions } from './options';
export { AbortError, FlowcatError, type ErrorCode } from './errors';
export * as runner from './runner-namespace';
