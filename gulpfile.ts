// The project's main job: `npx gulp` packages examples/app into examples/dist/app.js.
import { dest, src, watch as watchFiles } from 'gulp';
import sourcemaps from 'gulp-sourcemaps';
import { concatFlows } from './lib/index';
import { packager } from './examples/packager';

const sources = 'examples/app/src/**/*.js';

// Every module wrapped and minified in parallel, cached in .flowcat-cache, with a source map.
export function build() {
	return src(sources, { base: 'examples/app/src' })
		.pipe(sourcemaps.init())
		.pipe(concatFlows('app.js', {
			...packager({ entry: 'index.js', globalName: 'app' }),
			cache: { dir: '.flowcat-cache' },
		}))
		.pipe(sourcemaps.write('.'))
		.pipe(dest('examples/dist'));
}

// Rebuilds on change; unchanged modules come from the cache.
export function watch() {
	watchFiles(sources, { ignoreInitial: false }, build);
}

export default build;
