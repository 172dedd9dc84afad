// `runner.concat`: the SPEC's second name for the runner.
export { concat } from './runner';
export { concatToFile } from './concat-to-file';
