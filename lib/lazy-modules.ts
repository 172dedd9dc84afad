import type Concat from 'concat-with-sourcemaps';
import type fancyLog from 'fancy-log';
import type http from 'node:http';
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

// http or https, by the URL's protocol: https's agent and request take the same options.
export function loadHttpClient(protocol: string): typeof http {
	return (protocol === 'https:' ? require('node:https') : require('node:http')) as typeof http;
}
