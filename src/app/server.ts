import { createServer, type RequestListener, type Server, type ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App } from './app.js';
import { flushLogger } from '../observability/logger.js';
import { createTlsListener, type TlsFiles } from '../edge/tls-listener.js';

export interface Listening {
  proxyUrl: string;
  adminUrl: string;
  proxyServer: Server;
  adminServer: Server;
  /** Set when the ingress listener is bound (listen.ingress). */
  ingressUrl?: string;
  ingressServer?: Server;
  /** Stop accepting, let in-flight requests finish (at most `graceMs`), then close everything. */
  shutdown(graceMs?: number): Promise<void>;
}

/** listen.tls: the listeners served over TLS. */
export type ListenTls = Partial<Record<'proxy' | 'admin' | 'ingress', TlsFiles>>;

/** `host:port` → listen arguments (`[::1]:9090` → `::1`, 9090). */
export function parseHostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(text.slice(i + 1)) };
}

/** A listener could not be bound; the message names the address and the reason, nothing more. */
export class ListenError extends Error {
  constructor(
    readonly address: string,
    cause: NodeJS.ErrnoException,
  ) {
    const reason =
      cause.code === 'EADDRINUSE' ? 'the address is already in use' : cause.code === 'EACCES' ? 'permission denied' : cause.code === 'EADDRNOTAVAIL' ? 'no such local address' : cause.message;
    super(`cannot listen on ${address}: ${reason}`, { cause });
  }
}

function listen(server: Server, address: string, scheme: 'http' | 'https'): Promise<string> {
  const { host, port } = parseHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(address, err)));
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      const a = server.address() as AddressInfo;
      const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve(`${scheme}://${h === '0.0.0.0' ? '127.0.0.1' : h === '[::]' ? '[::1]' : h}:${a.port}`);
    });
  });
}

/**
 * Bind the listeners of an app: proxy, admin, and ingress when its address is given. Bound
 * before the app starts (`serve` binds first, so a port in use fails at once, before the store
 * is touched); `/readyz` says "starting" until it has. A failure closes whatever was bound and
 * rejects with a ListenError.
 */
export async function listenApp(
  app: App,
  addresses: { proxy: string; admin: string; ingress?: string | undefined; tls?: ListenTls | undefined },
  options: { tlsReloadMs?: number } = {},
): Promise<Listening> {
  const tls = addresses.tls ?? {};
  /** Plain HTTP, or TLS with certificate reload when listen.tls names the listener (edge/tls-listener.ts). */
  const serve = (name: 'proxy' | 'admin' | 'ingress', http: ServerOptions, handler: RequestListener): Server => {
    const files = tls[name];
    if (!files) return createServer(http, handler);
    return createTlsListener(
      { name, files, http, requireClientCertificate: name !== 'proxy', log: app.log, ...(options.tlsReloadMs !== undefined && { reloadIntervalMs: options.tlsReloadMs }) },
      handler,
    ).server;
  };
  const scheme = (name: 'proxy' | 'admin' | 'ingress') => (tls[name] ? 'https' : 'http');
  const proxyServer = serve('proxy', { keepAliveTimeout: 65_000, requestTimeout: 120_000 }, app.proxy.callback());
  const adminServer = serve('admin', {}, app.admin.callback());
  // Faces the internet: short header and request deadlines against slow clients.
  const ingressServer = addresses.ingress ? serve('ingress', { headersTimeout: 20_000, requestTimeout: 30_000 }, app.ingress.callback()) : undefined;
  // limits.maxConnections per listener: a connection beyond it is closed as soon as it is
  // accepted (node:http's maxConnections), so no client can make the gateway hold unbounded sockets.
  const servers = [proxyServer, adminServer, ingressServer].filter((s): s is NonNullable<typeof s> => s !== undefined);
  const bound = (max: number) => {
    for (const s of servers) s.maxConnections = max;
  };
  bound(app.live.current.limits.maxConnections);
  app.live.onApplied((cfg) => bound(cfg.limits.maxConnections));
  let proxyUrl: string;
  let adminUrl: string;
  let ingressUrl: string | undefined;
  try {
    proxyUrl = await listen(proxyServer, addresses.proxy, scheme('proxy'));
    adminUrl = await listen(adminServer, addresses.admin, scheme('admin'));
    if (ingressServer && addresses.ingress) ingressUrl = await listen(ingressServer, addresses.ingress, scheme('ingress'));
  } catch (err) {
    for (const s of [proxyServer, adminServer, ingressServer]) if (s?.listening) s.close();
    throw err;
  }
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
    ...(ingressUrl && ingressServer && { ingressUrl, ingressServer }),
    shutdown(graceMs = 25_000) {
      shuttingDown ??= (async () => {
        app.beginDrain();
        if (ingressServer) await closeServer(ingressServer, Math.min(graceMs, 10_000));
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
