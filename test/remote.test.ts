import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { concat, Flow, type Summary } from '../lib/index';
import { freePort, hasNginx, startCacheServer } from '../scripts/cache-server';
import { captureWarnings, createCollector, createTempDir } from './helpers';

const oldTime = new Date('2024-01-01T00:00:00Z');

async function startNginx(t: TestContext): Promise<{ url: string; data: string }> {
	const server = await startCacheServer(await createTempDir(t));
	t.after(server.stop);
	return server;
}

// Two machines: the same sources, each with its own local cache dir. Results of 4.5 KB to
// 1 MB: the small ones travel inlined in their /ac entry, the others through /cas.
async function createProject(t: TestContext): Promise<{ files: string[]; machine: (name: string) => string }> {
	const dir = await createTempDir(t);
	const files = await Promise.all(Array.from({ length: 6 }, async (_, index) => {
		const filePath = path.join(dir, 'src', `m${index}.js`);
		await mkdir(path.dirname(filePath), { recursive: true });
		await writeFile(filePath, `module ${index} `.repeat(500 * (index + 1) ** 3));
		await utimes(filePath, oldTime, oldTime);
		return filePath;
	}));
	return { files, machine: (name) => path.join(dir, `cache-${name}`) };
}

async function build(files: string[], cacheDir: string, remote: { url: string; readOnly?: boolean; timeoutMs?: number } | false) {
	let stepRuns = 0;
	const sources: string[] = [];
	const flows = files.map((file) => {
		const flow = new Flow([(text: string) => {
			stepRuns += 1;
			return text.toUpperCase();
		}], { key: 'upper-v1' }).inputFile(file);
		flow.on('hit', (info: { source: string }) => sources.push(info.source));
		return flow;
	});
	const output = createCollector();
	let summary!: Summary;
	const warnings = await captureWarnings(async () => {
		summary = await concat(output, flows, { cache: { dir: cacheDir, remote } });
	});
	return { summary, stepRuns, sources, text: output.text(), warnings: warnings.map(({ code, message }) => `${code}: ${message}`) };
}

async function expected(files: string[]): Promise<string> {
	return (await Promise.all(files.map((file) => readFile(file, 'utf8')))).join('').toUpperCase();
}

test('A second machine gets every result from the remote cache and runs no step', { skip: !hasNginx && 'nginx is not installed (.ci/run installs it)' }, async (t) => {
	const server = await startNginx(t);
	const { files, machine } = await createProject(t);
	const first = await build(files, machine('a'), { url: server.url });
	assert.deepEqual([first.summary.misses, first.stepRuns, first.warnings], [6, 6, []]);
	assert.deepEqual((await readdir(path.join(server.data, 'cache'))).sort(), ['ac', 'cas']);

	const second = await build(files, machine('b'), { url: server.url });
	assert.deepEqual([second.summary.hits, second.stepRuns], [6, 0]);
	assert.deepEqual(second.sources, Array(6).fill('remote'));
	assert.equal(second.text, await expected(files));

	// Now local on machine b, even without the server.
	const third = await build(files, machine('b'), false);
	assert.deepEqual([third.summary.hits, third.stepRuns, third.text], [6, 0, second.text]);
});

test('A read-only remote cache is read but never written', { skip: !hasNginx && 'nginx is not installed' }, async (t) => {
	const server = await startNginx(t);
	const { files, machine } = await createProject(t);
	const result = await build(files, machine('a'), { url: server.url, readOnly: true });
	assert.equal(result.text, await expected(files));
	assert.deepEqual(await readdir(server.data), []);
});

// A proxy in front of nginx that misbehaves as told.
type Fault = 'error-500' | 'slow' | 'truncate' | 'corrupt' | 'corrupt-cas' | 'stops';

async function startFaultyProxy(t: TestContext, target: string, fault: Fault): Promise<string> {
	const upstream = new URL(target);
	let requests = 0;
	const server = http.createServer((request, response) => {
		requests += 1;
		// The server goes away mid-run: a few answers, then every connection is cut.
		if (fault === 'stops' && requests > 3) {
			server.close();
			request.socket.destroy();
			return;
		}

		const isDownload = request.method === 'GET' && (request.url!.includes('/cas/') || (fault !== 'corrupt-cas' && request.url!.includes('/ac/')));
		if (fault === 'error-500') {
			response.writeHead(500).end('internal error');
			request.resume();
			return;
		}

		if (fault === 'slow') {
			setTimeout(() => response.destroyed || response.writeHead(404).end(), 3000);
			request.resume();
			return;
		}

		const forward = http.request({ host: upstream.hostname, port: upstream.port, path: request.url, method: request.method, headers: request.headers }, (answer) => {
			if (!isDownload || answer.statusCode !== 200) {
				response.writeHead(answer.statusCode!, answer.headers);
				answer.pipe(response);
				return;
			}

			const chunks: Buffer[] = [];
			answer.on('data', (chunk: Buffer) => chunks.push(chunk));
			answer.on('end', () => {
				const body = Buffer.concat(chunks);
				response.writeHead(200, { 'content-length': String(body.length) });
				if (fault === 'truncate') {
					response.write(body.subarray(0, body.length >> 1));
					setTimeout(() => response.destroy(), 20);
				} else {
					body[body.length >> 1] ^= 0xff;
					response.end(body);
				}
			});
		});
		request.pipe(forward);
	});
	server.listen(0, '127.0.0.1');
	await once(server, 'listening');
	t.after(() => {
		server.closeAllConnections();
		server.close();
	});
	return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/cache`;
}

for (const fault of ['error-500', 'slow', 'truncate', 'corrupt', 'corrupt-cas', 'stops', 'down'] as const) {
	test(`A remote cache that is ${fault} makes misses and one warning, never a failed or wrong build`, { skip: !hasNginx && 'nginx is not installed', timeout: 30_000 }, async (t) => {
		const server = await startNginx(t);
		const { files, machine } = await createProject(t);
		// Machine a fills the real server; machine b then reaches it through the fault.
		const fill = await build(files, machine('a'), { url: server.url });
		assert.deepEqual(fill.warnings, []);
		const url = fault === 'down' ? `http://127.0.0.1:${await freePort()}/cache` : await startFaultyProxy(t, server.url, fault);
		const started = performance.now();
		const result = await build(files, machine('b'), { url, timeoutMs: 300 });
		assert.equal(result.text, await expected(files));
		assert.ok(performance.now() - started < 5000, 'a failing remote does not slow the build much');
		const remoteWarnings = result.warnings.filter((warning) => warning.startsWith('FLOWCAT_REMOTE_CACHE_FAILED'));
		assert.equal(remoteWarnings.length, 1, result.warnings.join('\n'));
		assert.ok(!remoteWarnings[0].includes('password'));
		// Nothing bad was stored locally: a local-only rerun is all hits with the right bytes.
		const rerun = await build(files, machine('b'), false);
		assert.equal(rerun.text, result.text);
		assert.equal(rerun.summary.hits, 6);
	});
}

test('Large results stream to and from the remote cache', { skip: !hasNginx && 'nginx is not installed', timeout: 60_000 }, async (t) => {
	const server = await startNginx(t);
	const dir = await createTempDir(t);
	const filePath = path.join(dir, 'big.txt');
	await writeFile(filePath, 'large result line\n'.repeat(400_000));
	await utimes(filePath, oldTime, oldTime);
	const first = await build([filePath], path.join(dir, 'a'), { url: server.url });
	const second = await build([filePath], path.join(dir, 'b'), { url: server.url });
	assert.deepEqual([second.sources, second.stepRuns], [['remote'], 0]);
	assert.equal(second.text.length, 7_200_000);
	assert.equal(second.text, first.text);
});
