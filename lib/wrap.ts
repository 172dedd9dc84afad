import { Transform } from 'node:stream';
import type File from 'vinyl';
import { invalidType } from './errors';
import { loadConcatWithSourceMaps } from './lazy-modules';
import type { FactoryStep } from './steps';

// A step that puts `before` and `after` around the text, as a gulp plugin so that a source
// map on the file is shifted to match (a function step would have to drop it).
export function wrap(before: string, after = ''): FactoryStep {
	if (typeof before !== 'string') {
		throw invalidType('before', 'a string', before);
	}

	if (typeof after !== 'string') {
		throw invalidType('after', 'a string', after);
	}

	return () => new Transform({
		objectMode: true,
		transform(file: File, _encoding, callback) {
			if (!file.isBuffer()) {
				callback(null, file);
				return;
			}

			const Concat = loadConcatWithSourceMaps();
			const concat = new Concat(Boolean(file.sourceMap), file.relative, '');
			concat.add(null, before);
			concat.add(file.relative, file.contents, file.sourceMap);
			concat.add(null, after);
			file.contents = concat.content;
			if (file.sourceMap) {
				file.sourceMap = JSON.parse(concat.sourceMap!);
			}

			callback(null, file);
		},
	});
}
