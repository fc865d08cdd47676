import type { IncomingHttpHeaders } from 'node:http';
import type { RequestClass, RetryReason } from '../observability/metrics.js';
import type { UpstreamRequest, UpstreamResponse } from './forwarder.js';

/**
 * What each upstream type (keeta, keysecure) plugs into the proxy pipeline. The pipeline
 * (proxy-handler.ts) owns the edge, forwarding, retries and metrics; a handler owns its
 * protocol: validating the body, injecting credentials and signatures, reading the answer.
 */
export interface ProxyRequest {
  requestId: string;
  method: string;
  /** Path below the upstream's baseUrl, normalised (target-path.ts). */
  path: string;
  /** `?…` or ''. */
  query: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface Verdict {
  class: RequestClass;
  /** The `code` label for countersign_upstream_codes_total, when the answer had an envelope. */
  codeLabel?: string;
  /** The upstream said it did not execute the request, for this reason: one retry may follow. */
  retry?: RetryReason;
}

export interface Exchange {
  /** The merchant this call acts as, when it acts as one (checked against callers[].merchants). */
  readonly merchant?: string | undefined;
  /**
   * The upstream request for the next attempt: fresh timestamp, token and signature each time.
   * Synchronous when the token is at hand (the common case), a promise when it must be waited for.
   */
  prepare(): UpstreamRequest | Promise<UpstreamRequest>;
  judge(res: UpstreamResponse): Verdict;
  /** Make a retry worthwhile (renew the token, correct the clock). False: do not retry. */
  recover(reason: RetryReason, res: UpstreamResponse): Promise<boolean>;
}

export interface UpstreamHandler {
  readonly name: string;
  /** keeta, keysecure, or a recipe upstream's type (signed, lazada, …). */
  readonly type: string;
  /** scheme://host:port of baseUrl. */
  readonly origin: string;
  /** Validate and parse the caller's request once. Throws GatewayError for bad input. */
  begin(req: ProxyRequest): Exchange;
}

/** baseUrl → origin and base path ('' or '/api/open'). */
export function splitBaseUrl(baseUrl: string): { origin: string; basePath: string } {
  const u = new URL(baseUrl);
  return { origin: u.origin, basePath: u.pathname.replace(/\/+$/, '') };
}

/** Read a single-valued header (first value when repeated). */
export function headerValue(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes → text, refusing invalid UTF-8 instead of silently replacing it. */
export function decodeUtf8(body: Buffer): string | undefined {
  try {
    return utf8.decode(body);
  } catch {
    return undefined;
  }
}
