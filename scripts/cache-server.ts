// A private nginx serving a Bazel-style HTTP cache (GET and WebDAV PUT) on 127.0.0.1, for the
// remote-cache tests and benchmarks. Debian's nginx package must be installed (.ci/run does).
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

export const nginxBinary = spawnSync('sh', ['-c', 'command -v nginx || echo /usr/sbin/nginx'], { encoding: 'utf8' }).stdout.trim();
export const hasNginx = spawnSync('test', ['-x', nginxBinary]).status === 0;

export async function freePort(): Promise<number> {
	const server = net.createServer().listen(0, '127.0.0.1');
	await once(server, 'listening');
	const { port } = server.address() as net.AddressInfo;
	server.close();
	return port;
}

// Starts nginx with its files under `dir`; resolves once it accepts connections.
export async function startCacheServer(dir: string): Promise<{ url: string; data: string; stop: () => void }> {
	const data = path.join(dir, 'data');
	await mkdir(data, { recursive: true });
	const port = await freePort();
	const config = path.join(dir, 'nginx.conf');
	// As root, nginx's workers would run as nobody, who cannot read a private temp dir.
	const user = process.getuid?.() === 0 ? 'user root;' : '';
	await writeFile(config, `daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
worker_processes 1;
${user}
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
	const nginx = spawn(nginxBinary, ['-c', config, '-p', dir], { stdio: 'ignore' });
	const stop = () => {
		nginx.kill();
	};

	for (let attempt = 0; attempt < 300; attempt += 1) {
		const socket = net.connect(port, '127.0.0.1');
		const connected = await new Promise<boolean>((resolve) => {
			socket.once('connect', () => resolve(true));
			socket.once('error', () => resolve(false));
		});
		socket.destroy();
		if (connected) {
			return { url: `http://127.0.0.1:${port}/cache`, data, stop };
		}

		await new Promise((resolve) => setTimeout(resolve, 10));
	}

	stop();
	throw new Error(`nginx did not start; see ${dir}/error.log`);
}
