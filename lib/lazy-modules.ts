import type Concat from 'concat-with-sourcemaps';
import type fancyLog from 'fancy-log';
import type File from 'vinyl';

// Modules only some runs need are loaded on first use: start-up time is part of every build.

export function loadVinyl(): typeof File {
	return require('vinyl') as typeof File;
}

export function loadConcatWithSourceMaps(): typeof Concat {
	return require('concat-with-sourcemaps') as typeof Concat;
}

export function loadFancyLog(): typeof fancyLog {
	return require('fancy-log') as typeof fancyLog;
}
