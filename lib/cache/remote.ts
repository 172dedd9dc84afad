import { createReadStream } from 'node:fs';
import type http from 'node:http';
import { finished, pipeline } from 'node:stream/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import { invalidType } from '../errors';
import { checkCount } from '../check';
import { readRangeSync } from '../copy-file';
import { loadHttpClient } from '../lazy-modules';
import type { SourceMap } from '../vinyl';
import type { EntryLocation, EntryWriter } from './entry';

export interface RemoteOptions {
	/** The cache server's base URL; `/cas/<sha256>` and `/ac/<sha256>` go under it. Basic auth may be in it. */
	url: string;
	/** Download only: for builds that must not write to the shared cache (pull requests). Default: false. */
	readOnly?: boolean;
	/** A request slower than this counts as failed. Default: 5000. */
	timeoutMs?: number;
	/** How many uploads run at once. Default: 4. */
	uploadLimit?: number;
}

// What `/ac/<id>` holds: where the result's bytes are, and its source map. A small result is
// inlined too (base64), as Bazel inlines small outputs in an ActionResult: one request per hit.
interface ActionEntry {
	flowcat: 1;
	sha256: string;
	size: number;
	sourceMap?: SourceMap;
	contents?: string;
}

const inlineBytes = 64 * 1024;

export function resolveRemoteOptions(value: RemoteOptions | false | undefined): RemoteOptions | undefined {
	if (value === false) {
		return undefined;
	}

	if (value === undefined) {
		const url = process.env.FLOWCAT_REMOTE_CACHE;
		return url && url !== 'off' ? { url } : undefined;
	}

	if (typeof value !== 'object' || value === null || typeof value.url !== 'string' || !/^https?:\/\//.test(value.url)) {
		throw invalidType('remote', 'an object with an http(s) `url`, or false', value);
	}

	checkCount('timeoutMs', value.timeoutMs ?? 5000);
	checkCount('uploadLimit', value.uploadLimit ?? 4);
	return value;
}

// A Bazel HTTP remote cache (nginx with WebDAV PUT, bazel-remote with
// --disable_http_ac_validation). Any failure turns it off for the rest of the run: the
// build goes on as misses, and the reason is reported once.
export class RemoteStore {
	failure?: Error;
	readonly readOnly: boolean;
	private readonly base: URL;
	private readonly target: { protocol: string; hostname: string; port: string; path: string };
	private readonly headers: Record<string, string> = {};
	private readonly timeoutMs: number;
	private readonly uploads: LimitFunction;
	private readonly pending: Array<Promise<void>> = [];
	// Kept-alive connections: a run makes two requests per flow.
	private readonly agent: http.Agent;
	private readonly client: typeof http;

	constructor(options: RemoteOptions) {
		this.base = new URL(options.url.replace(/\/*$/, '/'));
		this.readOnly = options.readOnly ?? false;
		this.timeoutMs = options.timeoutMs ?? 5000;
		this.uploads = pLimit(options.uploadLimit ?? 4);
		this.client = loadHttpClient(this.base.protocol);
		this.agent = new this.client.Agent({ keepAlive: true, maxSockets: 16 });
		// Credentials from the URL or the environment, sent in headers and never printed.
		if (this.base.username) {
			this.headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(this.base.username)}:${decodeURIComponent(this.base.password)}`).toString('base64')}`;
			this.base.username = '';
			this.base.password = '';
		} else if (process.env.FLOWCAT_REMOTE_CACHE_TOKEN) {
			this.headers.authorization = `Bearer ${process.env.FLOWCAT_REMOTE_CACHE_TOKEN}`;
		}

		const { protocol, hostname, port, pathname } = this.base;
		// An IPv6 host is in brackets in a URL, and without them in request options.
		this.target = { protocol, hostname: hostname.replace(/^\[(.*)\]$/, '$1'), port, path: pathname };
	}

	/** Where the server is, without credentials, for messages. */
	get location(): string {
		return this.base.href;
	}

	// Downloads the result stored under `id` into `writer`; false when the server has none.
	async download(id: string, writer: EntryWriter): Promise<{ sourceMap?: SourceMap } | undefined> {
		const entryResponse = await this.request('GET', `ac/${id}`);
		if (entryResponse.statusCode === 404) {
			entryResponse.resume();
			return undefined;
		}

		const entry = JSON.parse((await readBody(this.check(entryResponse, `ac/${id}`))).toString()) as ActionEntry;
		if (entry.flowcat !== 1 || !/^[\da-f]{64}$/.test(entry.sha256) || !Number.isInteger(entry.size)) {
			throw new Error(`The remote cache's entry ac/${id} is not one of flowcat's`);
		}

		if (typeof entry.contents === 'string') {
			writer.end(Buffer.from(entry.contents, 'base64'));
			await finished(writer);
		} else {
			await pipeline(this.check(await this.request('GET', `cas/${entry.sha256}`), `cas/${entry.sha256}`), writer);
		}

		// The writer hashed what came: a short or altered body never becomes an entry.
		if (writer.bytes !== entry.size || writer.sha256() !== entry.sha256) {
			throw new Error(`The remote cache sent cas/${entry.sha256} with ${writer.bytes} bytes and another digest`);
		}

		return { sourceMap: entry.sourceMap };
	}

	// Uploads the result (`size` bytes from `location`) and its entry, in the background.
	upload(id: string, location: EntryLocation, size: number, sha256: string, sourceMap: SourceMap | undefined): void {
		if (this.readOnly || this.failure) {
			return;
		}

		const task = this.uploads(async () => {
			if (this.failure) {
				return;
			}

			const bytes = size <= inlineBytes ? readRangeSync(location.path, location.start, size) : createReadStream(location.path, { start: location.start, end: location.start + size - 1 });
			this.check(await this.request('PUT', `cas/${sha256}`, bytes, size), `cas/${sha256}`).resume();
			const contents = Buffer.isBuffer(bytes) ? bytes.toString('base64') : undefined;
			const entry: ActionEntry = { flowcat: 1, sha256, size, sourceMap, contents };
			const body = Buffer.from(JSON.stringify(entry));
			this.check(await this.request('PUT', `ac/${id}`, body, body.length), `ac/${id}`).resume();
		}).catch((error: unknown) => this.fail(error));
		this.pending.push(task);
	}

	/** Waits for the uploads started so far, then closes the connections. */
	async drain(): Promise<void> {
		await Promise.all(this.pending);
		this.agent.destroy();
	}

	fail(error: unknown): void {
		this.failure ??= error instanceof Error ? error : new Error(String(error));
	}

	private check(response: http.IncomingMessage, path: string): http.IncomingMessage {
		if (response.statusCode === undefined || response.statusCode >= 300) {
			response.resume();
			throw new Error(`The remote cache answered ${response.statusCode} for ${path}`);
		}

		return response;
	}

	private request(method: string, path: string, body?: Buffer | NodeJS.ReadableStream, length?: number): Promise<http.IncomingMessage> {
		return new Promise((resolve, reject) => {
			const headers = { ...this.headers, ...(length === undefined ? {} : { 'content-length': String(length) }) };
			// Options made once rather than a URL per request: `path` is a fixed prefix and a digest.
			const options = { ...this.target, path: this.target.path + path, method, headers, agent: this.agent, timeout: this.timeoutMs };
			const request = this.client.request(options, (response) => {
				// A body that stalls counts as a failure too.
				response.setTimeout(this.timeoutMs, () => response.destroy(new Error(`The remote cache stalled on ${path}`)));
				resolve(response);
			});
			request.on('timeout', () => request.destroy(new Error(`The remote cache took over ${this.timeoutMs} ms for ${path}`)));
			request.on('error', reject);
			if (body === undefined || Buffer.isBuffer(body)) {
				request.end(body);
			} else {
				pipeline(body, request).catch(reject);
			}
		});
	}
}

// With events rather than `for await`: an async iterator per response cost more than the
// request itself when a run downloads a thousand small entries.
function readBody(response: http.IncomingMessage): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		response.on('data', (chunk: Buffer) => chunks.push(chunk));
		response.on('end', () => resolve(Buffer.concat(chunks)));
		response.on('error', reject);
		// A response destroyed before its end (a timeout) emits neither `end` nor always `error`.
		response.on('close', () => reject(new Error('The remote cache closed the response before its end')));
	});
}
