import { readFileSync } from 'node:fs';
import { Pool, ProxyAgent, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';

/**
 * How the forwarder reaches one upstream origin (upstreams.*.tls, upstreams.*.egressProxy):
 * the CA it trusts (else the system's), the client certificate it shows, the name the
 * certificate must carry, and an HTTP CONNECT proxy to tunnel through. Token calls use the same
 * forwarder, so they take the same way out.
 */
export interface UpstreamTransport {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  /** http://host:port of a forward proxy: every connection is a CONNECT tunnel through it. */
  egressProxy?: string;
}

/** Origin → transport, from the upstreams' config; the certificate files are read here, once. */
export function upstreamTransports(upstreams: Readonly<Record<string, UpstreamConfig>>): Map<string, UpstreamTransport> {
  const out = new Map<string, UpstreamTransport>();
  for (const u of Object.values(upstreams)) {
    const t: UpstreamTransport = {
      ...(u.tls?.caFile && { ca: readFileSync(u.tls.caFile) }),
      ...(u.tls?.certFile && { cert: readFileSync(u.tls.certFile) }),
      ...(u.tls?.keyFile && { key: readFileSync(u.tls.keyFile) }),
      ...(u.tls?.serverName && { servername: u.tls.serverName }),
      ...(u.egressProxy && { egressProxy: u.egressProxy }),
    };
    if (Object.keys(t).length === 0) continue;
    // A recipe's token endpoint may live on another host: its calls take the same way out.
    const tokenBaseUrl = (u as { tokenBaseUrl?: string | undefined }).tokenBaseUrl;
    for (const url of [u.baseUrl, tokenBaseUrl]) if (url) out.set(new URL(url).origin, t);
  }
  return out;
}

export interface DispatcherOptions {
  /** null: no bound (business calls are bounded by the proxy's fair share, fair-share.ts). */
  connections: number | null;
  keepAliveTimeout: number;
}

/** A keep-alive pool to `origin`, or a CONNECT-tunnelling agent when the transport names an egress proxy. */
export function createUpstreamDispatcher(origin: string, transport: UpstreamTransport | undefined, opts: DispatcherOptions): Dispatcher {
  const tls = {
    ...(transport?.ca && { ca: transport.ca }),
    ...(transport?.cert && { cert: transport.cert }),
    ...(transport?.key && { key: transport.key }),
    ...(transport?.servername && { servername: transport.servername }),
  };
  if (transport?.egressProxy) {
    return new ProxyAgent({
      uri: transport.egressProxy,
      // Plain-HTTP upstreams are tunnelled too: the proxy sees host:port, never the request.
      proxyTunnel: true,
      requestTls: tls,
      connections: opts.connections,
      keepAliveTimeout: opts.keepAliveTimeout,
      pipelining: 1,
    });
  }
  return new Pool(origin, { ...opts, pipelining: 1, ...(Object.keys(tls).length > 0 && { connect: tls }) });
}
