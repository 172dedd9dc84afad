// A small CommonJS packager built on flowcat: each module is wrapped with its path and
// minified, a header installs a tiny `require`, and a footer loads the entry point.
import { createHash } from 'node:crypto';
import terser from 'gulp-terser';
import type File from 'vinyl';
import { wrap, type ConcatFlowsOptions } from '../lib/index';

export interface PackagerOptions {
	/** The entry module, relative to the sources' base, e.g. 'index.js'. */
	entry: string;
	/** The global variable the entry's exports are assigned to. */
	globalName: string;
	/** Options for terser; `false` to skip minifying. */
	minify?: Record<string, unknown> | false;
}

// Resolves `require('./x')` against the requiring module's path, as Node does for relative paths.
const runtime = `var __modules = {}, __loaded = {};
function define(name, factory) { __modules[name] = factory; }
function __resolve(from, request) {
	var parts = from.split('/').slice(0, -1);
	request.split('/').forEach(function (part) {
		if (part === '..') parts.pop(); else if (part !== '.') parts.push(part);
	});
	var name = parts.join('/');
	if (__modules[name]) return name;
	if (__modules[name + '.js']) return name + '.js';
	if (__modules[name + '/index.js']) return name + '/index.js';
	throw new Error('Cannot find module ' + request + ' from ' + from);
}
function __load(name) {
	if (!__loaded[name]) {
		var module = __loaded[name] = { exports: {} };
		__modules[name].call(module.exports, module, module.exports, function (request) { return __load(__resolve(name, request)); });
	}
	return __loaded[name].exports;
}
`;

export function packager(options: PackagerOptions): Required<Pick<ConcatFlowsOptions, 'header' | 'footer' | 'steps' | 'key'>> {
	const { entry, globalName, minify = {} } = options;
	const header = `var ${globalName} = (function () {\n${runtime}`;
	const footer = `\nreturn __load(${JSON.stringify(entry)});\n})();\n`;
	const steps = (file: File) => [
		wrap(`define(${JSON.stringify(file.relative.split('\\').join('/'))}, function (module, exports, require) {\n`, '\n});'),
		...(minify ? [() => terser(minify)] : []),
	];
	// The steps close over their options, so the cache key must name them.
	const terserVersion = (require('terser/package.json') as { version: string }).version;
	const key = createHash('sha256').update(JSON.stringify({ terserVersion, minify, wrap: steps.toString() })).digest('hex');
	return { header, footer, steps, key };
}
