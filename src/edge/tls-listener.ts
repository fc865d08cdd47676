import { readFileSync, statSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer, type ServerOptions } from 'node:https';
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import type { RequestListener } from 'node:http';
import type { Logger } from '../observability/logger.js';

/**
 * A listener served over TLS (listen.tls.{proxy,admin,ingress}): TLS 1.2 or newer, its
 * certificate and key (and client CA) re-read when the files change, so a certificate that
 * cert-manager renews in place is served to new connections within one poll, with no restart
 * and no connection dropped (`setSecureContext` leaves open connections on the old one).
 *
 * The files are polled (stat, then read on a change of inode, size or mtime): a Kubernetes
 * Secret volume swaps a symlink, which file-change events do not reliably report. A pair that
 * does not load (the key written before the certificate, a truncated file) is skipped, the
 * current one stays, and the next poll tries again.
 *
 * With `clientCaFile` the listener asks for a client certificate. A presented certificate that
 * does not chain to that CA ends the connection before any request is read. On the proxy
 * listener a connection without a certificate is served (its callers prove themselves with a
 * bearer token); on the admin and ingress listeners `requireClientCertificate` refuses it too.
 */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  clientCaFile?: string | undefined;
}

export interface TlsListenerOptions {
  files: TlsFiles;
  /** Refuse connections that present no certificate (with clientCaFile). */
  requireClientCertificate: boolean;
  /** How often the files are looked at (default 5 s). */
  reloadIntervalMs?: number;
  /** http.Server options (timeouts). */
  http?: ServerOptions;
  log?: Logger;
  /** Names the listener in log lines. */
  name: string;
}

export interface TlsListener {
  server: HttpsServer;
  /** Look at the files now (the poll calls it). True when a new certificate is now served. */
  reload(): boolean;
  stop(): void;
}

export const TLS_RELOAD_INTERVAL_MS = 5000;

function readContext(files: TlsFiles): SecureContextOptions {
  return {
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    ...(files.clientCaFile && { ca: readFileSync(files.clientCaFile) }),
    minVersion: 'TLSv1.2',
  };
}

function fingerprint(files: TlsFiles): string {
  return [files.certFile, files.keyFile, files.clientCaFile]
    .filter((f): f is string => f !== undefined)
    .map((f) => {
      try {
        const s = statSync(f);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

export function createTlsListener(opts: TlsListenerOptions, handler: RequestListener): TlsListener {
  const { files } = opts;
  let seen = fingerprint(files);
  const server = createHttpsServer(
    {
      ...opts.http,
      ...readContext(files),
      ...(files.clientCaFile && { requestCert: true, rejectUnauthorized: opts.requireClientCertificate }),
    },
    handler,
  );
  if (files.clientCaFile && !opts.requireClientCertificate) {
    // Runs before the HTTP parser sees the connection: a certificate from another CA gets nothing.
    server.prependListener('secureConnection', (socket: TLSSocket) => {
      if (socket.authorized) return;
      const cert = socket.getPeerCertificate();
      if (cert && Object.keys(cert).length > 0) socket.destroy();
    });
  }
  const reload = (): boolean => {
    const now = fingerprint(files);
    if (now === seen) return false;
    let context: SecureContextOptions;
    try {
      context = readContext(files);
      createSecureContext(context); // throws on a key that does not match its certificate
    } catch (err) {
      opts.log?.warn({ listener: opts.name, err: (err as Error).message }, 'new TLS certificate files do not load; serving the current ones');
      return false;
    }
    seen = now;
    server.setSecureContext(context);
    opts.log?.info({ listener: opts.name, certFile: files.certFile }, 'TLS certificate reloaded');
    return true;
  };
  const timer = setInterval(reload, opts.reloadIntervalMs ?? TLS_RELOAD_INTERVAL_MS);
  timer.unref();
  server.on('close', () => clearInterval(timer));
  return { server, reload, stop: () => clearInterval(timer) };
}
