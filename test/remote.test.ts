import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { concat, Flow } from '../lib/index';
import { createCollector, createTempDir, delay } from './helpers';

const hasNginx = spawnSync('sh', ['-c', 'command -v nginx || test -x /usr/sbin/nginx']).status === 0;
const nginxBinary = spawnSync('sh', ['-c', 'command -v nginx || echo /usr/sbin/nginx'], { encoding: 'utf8' }).stdout.trim();
const oldTime = new Date('2024-01-01T00:00:00Z');

async function freePort(): Promise<number> {
	const server = net.createServer().listen(0, '127.0.0.1');
	await once(server, 'listening');
	const { port } = server.address() as net.AddressInfo;
	server.close();
	return port;
}

// A private nginx with WebDAV PUT on 127.0.0.1, as a Bazel HTTP cache: GET and PUT of files.
async function startNginx(t: TestContext): Promise<{ url: string; data: string }> {
	const dir = await createTempDir(t);
	const data = path.join(dir, 'data');
	await mkdir(data);
	const port = await freePort();
	const config = path.join(dir, 'nginx.conf');
	await writeFile(config, `daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root;' : ''}
events {}
http {
	access_log off;
	client_body_temp_path ${dir}/body;
	proxy_temp_path ${dir}/proxy;
	fastcgi_temp_path ${dir}/fastcgi;
	uwsgi_temp_path ${dir}/uwsgi;
	scgi_temp_path ${dir}/scgi;
	server {
		listen 127.0.0.1:${port};
		root ${data};
		client_max_body_size 0;
		location / {
			dav_methods PUT;
			create_full_put_path on;
		}
	}
}
`);
	const nginx: ChildProcess = spawn(nginxBinary, ['-c', config, '-p', dir], { stdio: 'ignore' });
	t.after(() => {
		nginx.kill();
	});
	for (let attempt = 0; ; attempt += 1) {
		const socket = net.connect(port, '127.0.0.1');
		const connected = await new Promise<boolean>((resolve) => {
			socket.once('connect', () => resolve(true));
			socket.once('error', () => resolve(false));
		});
		socket.destroy();
		if (connected) {
			break;
		}

		assert.ok(attempt < 200, 'nginx started');
		await delay(10);
	}

	return { url: `http://127.0.0.1:${port}/cache`, data };
}

// Two machines: the same sources, each with its own local cache dir.
async function createProject(t: TestContext): Promise<{ files: string[]; machine: (name: string) => string }> {
	const dir = await createTempDir(t);
	const files = await Promise.all(Array.from({ length: 6 }, async (_, index) => {
		const filePath = path.join(dir, 'src', `m${index}.js`);
		await mkdir(path.dirname(filePath), { recursive: true });
		await writeFile(filePath, `module ${index} `.repeat(500 * (index + 1)));
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
	const warnings: string[] = [];
	const onWarning = (warning: Error & { code?: string }) => warnings.push(`${warning.code}: ${warning.message}`);
	process.on('warning', onWarning);
	try {
		const summary = await concat(output, flows, { cache: { dir: cacheDir, remote } });
		await delay(10);
		return { summary, stepRuns, sources, text: output.text(), warnings };
	} finally {
		process.off('warning', onWarning);
	}
}

async function expected(files: string[]): Promise<string> {
	const { readFile } = await import('node:fs/promises');
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
type Fault = 'error-500' | 'slow' | 'truncate' | 'corrupt';

async function startFaultyProxy(t: TestContext, target: string, fault: Fault): Promise<string> {
	const upstream = new URL(target);
	const server = http.createServer((request, response) => {
		const isDownload = request.method === 'GET' && request.url!.includes('/cas/');
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

for (const fault of ['error-500', 'slow', 'truncate', 'corrupt', 'down'] as const) {
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
