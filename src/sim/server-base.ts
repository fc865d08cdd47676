/**
 * The HTTP plumbing both simulators share: one `node:http` listener that serves the
 * simulated API and, under `/_sim/...`, the control surface (loopback callers only).
 *
 * Every answer carries a `Date` header from the simulated clock. API answers are computed
 * as soon as the request body has arrived (so the simulated upstream has "executed" the
 * request), then held back by the configured latency before being written.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ControlError, type SimCore } from './control.js';

const MAX_BODY_BYTES = 5 * 1024 * 1024;

/** A request as the simulators see it. */
export interface SimRequest {
  method: string;
  /** Path and query exactly as received. */
  url: string;
  /** Path without the query string. */
  path: string;
  /** Query string without the leading "?" ('' when absent). */
  query: string;
  headers: Record<string, string>;
  rawBody: Buffer;
  /** True when the body exceeded the limit (rawBody then holds only the first part). */
  bodyTooLarge: boolean;
  remoteAddress: string;
  /** Reached over HTTPS (the Keeta simulator rebuilds the signed URL with this scheme). */
  secure?: boolean;
}

/** An answer computed by a simulator. */
export interface SimAnswer {
  status: number;
  contentType: string;
  body: string;
  /** Envelope code, or the HTTP status for raw HTTP answers (recorded in the request log). */
  code: number;
  /** Extra response headers (e.g. Location). */
  headers?: Record<string, string>;
}

export interface ControlRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Matched against the path after `/_sim`; capture groups become `params`. */
  pattern: RegExp;
  /** May return a promise (pushes answer once the receiver has answered). */
  handle(params: string[], body: unknown): unknown;
}

export interface SimServerOptions {
  host: string;
  port: number;
  core: SimCore;
  controlRoutes: ControlRoute[];
  /** Parses a control request body into a plain value. */
  parseControlBody(text: string): unknown;
  answer(req: SimRequest): SimAnswer | Promise<SimAnswer>;
  /** Serve HTTPS with this certificate and key (PEM) instead of plain HTTP. */
  tls?: SimTls;
}

/** A simulator's HTTPS certificate and key, PEM. */
export interface SimTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** Require a client certificate signed by this CA (an upstream that wants mutual TLS). */
  clientCa?: string | Buffer;
}

export interface RunningServer {
  server: Server;
  port: number;
  /** The host part to use in URLs (IPv6 in brackets). */
  urlHost: string;
  /** `https` when served with a certificate, else `http`. */
  scheme: 'http' | 'https';
  close(): Promise<void>;
}

export function isLoopbackAddress(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export function headerRecord(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function readBody(req: IncomingMessage): Promise<{ body: Buffer; tooLarge: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve({ body: Buffer.concat(chunks), tooLarge }));
    req.on('error', reject);
  });
}

function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

export function jsonAnswer(status: number, value: unknown, code = status): SimAnswer {
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(value), code };
}

export function textAnswer(status: number, text: string): SimAnswer {
  return { status, contentType: 'text/plain; charset=utf-8', body: text, code: status };
}

/** A raw HTTP answer for failNext({httpStatus, body}). */
export function rawFailureAnswer(httpStatus: number, body: unknown): SimAnswer {
  if (body === undefined) return textAnswer(httpStatus, '');
  if (typeof body === 'string') return textAnswer(httpStatus, body);
  return jsonAnswer(httpStatus, body);
}

export async function startSimServer(opts: SimServerOptions): Promise<RunningServer> {
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const write = (res: ServerResponse, answer: SimAnswer): void => {
    if (res.writableEnded || res.destroyed) return;
    res.statusCode = answer.status;
    res.setHeader('Date', new Date(opts.core.now()).toUTCString());
    res.setHeader('Content-Type', answer.contentType);
    for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
    res.setHeader('Content-Length', Buffer.byteLength(answer.body));
    res.end(answer.body);
  };

  const handleControl = async (req: SimRequest): Promise<SimAnswer> => {
    if (!isLoopbackAddress(req.remoteAddress)) {
      return jsonAnswer(403, { error: 'control routes accept loopback callers only' });
    }
    const sub = req.path.slice('/_sim'.length) || '/';
    let methodMismatch = false;
    for (const route of opts.controlRoutes) {
      const m = route.pattern.exec(sub);
      if (!m) continue;
      if (route.method !== req.method) {
        methodMismatch = true;
        continue;
      }
      try {
        const text = req.rawBody.toString('utf8');
        const body = text.trim() === '' ? {} : opts.parseControlBody(text);
        const params = m.slice(1).map((p) => decodeURIComponent(p ?? ''));
        const result: unknown = await route.handle(params, body);
        return jsonAnswer(200, result === undefined ? { ok: true } : result);
      } catch (err) {
        if (err instanceof ControlError) return jsonAnswer(err.status, { error: err.message });
        return jsonAnswer(400, { error: err instanceof Error ? err.message : String(err) });
      }
    }
    return methodMismatch
      ? jsonAnswer(405, { error: `method ${req.method} not allowed on /_sim${sub}` })
      : jsonAnswer(404, { error: `no control route /_sim${sub}` });
  };

  const listener: RequestListener = (req, res) => {
    void (async () => {
      const at = opts.core.now();
      let body: { body: Buffer; tooLarge: boolean };
      try {
        body = await readBody(req);
      } catch {
        res.destroy();
        return;
      }
      const url = req.url ?? '/';
      const { path, query } = splitUrl(url);
      const simReq: SimRequest = {
        method: req.method ?? 'GET',
        url,
        path,
        query,
        headers: headerRecord(req),
        rawBody: body.body,
        bodyTooLarge: body.tooLarge,
        remoteAddress: req.socket.remoteAddress ?? '',
        secure: opts.tls !== undefined,
      };
      if (path === '/_sim' || path.startsWith('/_sim/')) {
        write(res, await handleControl(simReq));
        return;
      }
      let answer: SimAnswer;
      try {
        answer = await opts.answer(simReq);
      } catch (err) {
        // A simulator bug must be loud, not a silent hang.
        answer = textAnswer(500, `simulator internal error: ${err instanceof Error ? err.stack : String(err)}`);
      }
      opts.core.record({
        method: simReq.method,
        path: url,
        headers: simReq.headers,
        rawBody: body.body.toString('utf8'),
        code: answer.code,
        at,
      });
      const latency = opts.core.latencyMs;
      if (latency > 0 && !closed) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          write(res, answer);
        }, latency);
        timers.add(timer);
      } else {
        write(res, answer);
      }
    })();
  };
  const server: Server = opts.tls ? createHttpsServer(
        {
          cert: opts.tls.cert,
          key: opts.tls.key,
          minVersion: 'TLSv1.2',
          ...(opts.tls.clientCa !== undefined && { ca: opts.tls.clientCa, requestCert: true, rejectUnauthorized: true }),
        },
        listener,
      ) : createServer(listener);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    server,
    port: address.port,
    urlHost: opts.host.includes(':') ? `[${opts.host}]` : opts.host,
    scheme: opts.tls ? 'https' : 'http',
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        closed = true;
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
