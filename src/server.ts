import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App } from './app.js';
import { flushLogger } from './logger.js';

export interface Listening {
  proxyUrl: string;
  adminUrl: string;
  proxyServer: Server;
  adminServer: Server;
  /** Stop accepting, let in-flight requests finish (at most `graceMs`), then close everything. */
  shutdown(graceMs?: number): Promise<void>;
}

/** `host:port` → listen arguments (`[::1]:9090` → `::1`, 9090). */
export function parseHostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(text.slice(i + 1)) };
}

function listen(server: Server, address: string): Promise<string> {
  const { host, port } = parseHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve(`http://${h === '0.0.0.0' ? '127.0.0.1' : h === '[::]' ? '[::1]' : h}:${a.port}`);
    });
  });
}

/** Bind both listeners of an app that has been started. */
export async function listenApp(app: App, addresses: { proxy: string; admin: string }): Promise<Listening> {
  const proxyServer = createServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000 }, app.proxy.callback());
  const adminServer = createServer(app.admin.callback());
  const proxyUrl = await listen(proxyServer, addresses.proxy);
  const adminUrl = await listen(adminServer, addresses.admin);
  let shuttingDown: Promise<void> | undefined;

  const closeServer = (server: Server, graceMs: number) =>
    new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), graceMs);
      force.unref();
      // A keep-alive socket whose request is still running becomes idle once its response is
      // sent: close idle sockets as they appear instead of waiting for the grace period.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      sweep.unref();
      server.close(() => {
        clearTimeout(force);
        clearInterval(sweep);
        resolve();
      });
      server.closeIdleConnections();
    });

  return {
    proxyUrl,
    adminUrl,
    proxyServer,
    adminServer,
    shutdown(graceMs = 25_000) {
      shuttingDown ??= (async () => {
        app.beginDrain();
        // In-flight requests finish; idle keep-alive sockets are closed; new ones refused.
        await closeServer(proxyServer, graceMs);
        await closeServer(adminServer, 1000);
        await app.close();
        // The access log is written asynchronously: no line may be lost at exit.
        await flushLogger(app.log);
      })();
      return shuttingDown;
    },
  };
}
