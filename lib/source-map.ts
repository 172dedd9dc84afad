import { loadConcatWithSourceMaps } from './lazy-modules';
import type { SourceMap } from './vinyl';

export interface MappedPart {
	bytes: number;
	/** The part's source path (relative), or null for text with no source: a header, a separator. */
	source: string | null;
	sourceMap?: SourceMap;
}

// One source map for the concatenated output, from each part's own map. A part whose map is
// unknown but whose text is its source unchanged maps line for line, as gulp-concat does.
export function combineSourceMaps(fileName: string, contents: Buffer, parts: MappedPart[]): SourceMap {
	const Concat = loadConcatWithSourceMaps();
	const concat = new Concat(true, fileName, '');
	let offset = 0;
	for (const part of parts) {
		const text = contents.subarray(offset, offset + part.bytes);
		offset += part.bytes;
		concat.add(part.source, text, part.sourceMap);
	}

	return JSON.parse(concat.sourceMap!) as SourceMap;
}
