// The gulp contenders, all ending in gulp-concat and dest.
// Usage: gulp.cjs <floor|serial|parallel|cache> <srcDir> <outFile> [--cache=dir] [--raw (no newline between files)]
//   floor:    src → gulp-concat (no step: what any gulp plugin pays)
//   serial:   src → through2 async step (5 ms) → gulp-concat (the usual idiom)
//   parallel: src → parallel-transform(16) (5 ms) → gulp-concat
//   cache:    src → gulp-cache(through2 5 ms) → gulp-concat
const path = require('node:path');
const { pipeline } = require('node:stream/promises');
const vfs = require('vinyl-fs');
const concat = require('gulp-concat');
const { parseArgs, sleep } = require('./common.cjs');

const { positional: [mode, srcDir, outFile], flags } = parseArgs(process.argv.slice(2));
const slowStep = () => require('through2').obj((file, _encoding, callback) => {
	sleep(5).then(() => callback(null, file));
});
// Each mode loads only its own modules: gulp-cache alone takes about 28 ms to load, which
// the floor and parallel-transform must not pay.
const stagesByMode = {
	floor: () => [],
	serial: () => [slowStep()],
	parallel: () => [require('parallel-transform')(16, (file, callback) => {
		sleep(5).then(() => callback(null, file));
	})],
	cache: () => {
		const cache = require('gulp-cache');
		return [cache(slowStep(), { name: 'bench', fileCache: new cache.Cache({ tmpDir: flags.cache, cacheDirName: 'gulp-cache' }) })];
	},
};
const stages = stagesByMode[mode]();

pipeline(vfs.src('*', { cwd: srcDir, encoding: false }), ...stages, concat(path.basename(outFile), { newLine: flags.raw ? '' : '\n' }), vfs.dest(path.dirname(outFile), { encoding: false }))
	.then(() => console.log('{}'), (error) => {
		console.error(error);
		process.exitCode = 1;
	});
