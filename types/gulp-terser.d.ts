declare module 'gulp-terser' {
	// gulp-terser ships no types: a gulp plugin factory taking terser's options.
	function terser(options?: Record<string, unknown>): NodeJS.ReadWriteStream;
	export = terser;
}
