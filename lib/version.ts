import { readFileSync } from 'node:fs';
import path from 'node:path';

let version: string | undefined;

// The package's version, read once. This file is lib/version.ts in the source tree and part
// of dist/index.js in the package: either way the package.json is one folder up.
export function flowcatVersion(): string {
	version ??= (JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
	return version;
}
