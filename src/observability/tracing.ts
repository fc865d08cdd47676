import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import type * as OtelCore from '@opentelemetry/core';
import type * as OtelExporter from '@opentelemetry/exporter-trace-otlp-http';
import type * as OtelResources from '@opentelemetry/resources';
import type * as OtelSdk from '@opentelemetry/sdk-trace-base';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type Koa from 'koa';
import type { TracingConfig } from '../config/tracing-schema.js';
import type { Deliverer } from '../ingress/delivery.js';
import type { UpstreamRequest } from '../proxy/forwarder.js';

/**
 * OpenTelemetry traces (README "Tracing"). Built only when `tracing:` is configured: with
 * tracing off the proxy holds no Tracing and does no tracing work at all.
 *
 * Contexts are passed explicitly (no global context manager, no global provider): a proxied
 * request's server span is the parent of its attempt, renewal and recovery spans. Only the
 * ingress, off the hot path, carries its context through AsyncLocalStorage to its deliveries.
 *
 * Attributes are OpenTelemetry's HTTP ones plus countersign.upstream and countersign.class:
 * methods, paths without their query, status codes, classes and error codes. Never a header
 * value, a body, a token, a secret or a merchant id.
 */
export interface Tracing {
  /** One proxied request: its server span, continuing the caller's traceparent. */
  startRequest(req: IncomingMessage): RequestTrace;
  /** Ingress: a server span around each /hooks/… push, the parent of its deliveries. */
  ingressMiddleware(): Koa.Middleware;
  /** A Deliverer whose POSTs are client spans under the current push's span. */
  deliverer(inner: Deliverer): Deliverer;
  /** Export what is pending and stop. */
  shutdown(): Promise<void>;
}

export interface RequestTrace {
  /** The request was matched to an upstream and path (route and countersign.upstream). */
  route(upstream: string, path: string): void;
  /** A client span for one upstream attempt; returns the request to send, carrying its traceparent. */
  attempt(origin: string, req: UpstreamRequest, resendCount: number, retryReason: string | undefined): AttemptTrace;
  /** A span around work the request waits for: a token renewal, a clock correction. */
  wait<T>(name: string, work: Promise<T>, attributes?: Attributes): Promise<T>;
  /** The request will be sent again, for this reason. */
  retry(reason: string): void;
  end(status: number, cls: string, errorCode: string | undefined): void;
}

export interface AttemptTrace {
  readonly request: UpstreamRequest;
  end(status: number, cls: string): void;
  fail(errorCode: string, cls: string): void;
}

/**
 * The OpenTelemetry packages, loaded on the first createTracing(): a gateway without `tracing:`
 * never loads them (no start-up cost either). Their CommonJS builds, loaded synchronously.
 */
interface Otel {
  api: typeof OtelApi;
  propagator: OtelCore.W3CTraceContextPropagator;
  exporter: typeof OtelExporter;
  resources: typeof OtelResources;
  sdk: typeof OtelSdk;
}
let otel: Otel | undefined;
function loadOtel(): Otel {
  if (otel) return otel;
  const require = createRequire(import.meta.url);
  const core = require('@opentelemetry/core') as typeof OtelCore;
  otel = {
    api: require('@opentelemetry/api') as typeof OtelApi,
    propagator: new core.W3CTraceContextPropagator(),
    exporter: require('@opentelemetry/exporter-trace-otlp-http') as typeof OtelExporter,
    resources: require('@opentelemetry/resources') as typeof OtelResources,
    sdk: require('@opentelemetry/sdk-trace-base') as typeof OtelSdk,
  };
  return otel;
}
const headerGetter = {
  keys: (carrier: IncomingMessage['headers']) => Object.keys(carrier),
  get: (carrier: IncomingMessage['headers'], key: string) => carrier[key],
};
const recordSetter = { set: (carrier: Record<string, string | string[]>, key: string, value: string) => void (carrier[key] = value) };

export interface TracingOptions {
  /** Defaults to OTLP/HTTP at {otlpEndpoint}/v1/traces. */
  exporter?: SpanExporter;
  /** Batch delay before export (default 1 s). */
  scheduledDelayMillis?: number;
}

export function createTracing(cfg: TracingConfig, options: TracingOptions = {}): Tracing {
  const o = loadOtel();
  const { OTLPTraceExporter } = o.exporter;
  const { resourceFromAttributes } = o.resources;
  const { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } = o.sdk;
  const { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } = o.api;
  const propagator = o.propagator;
  const exporter = options.exporter ?? new OTLPTraceExporter({ url: `${cfg.otlpEndpoint.replace(/\/+$/, '')}/v1/traces` });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': cfg.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(cfg.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.scheduledDelayMillis ?? 1000 })],
  });
  const tracer = provider.getTracer('countersign');
  const ingressContext = new AsyncLocalStorage<Context>();

  return {
    startRequest: (req) => new ProxyRequestTrace(o, tracer, req),
    ingressMiddleware() {
      return async function traceIngress(ctx, next) {
        if (!ctx.path.startsWith('/hooks/')) return next();
        const parent = propagator.extract(ROOT_CONTEXT, ctx.req.headers, headerGetter);
        const upstream = ctx.path.split('/')[2] ?? '';
        const span = tracer.startSpan(
          `${ctx.method} /hooks/${upstream}`,
          {
            kind: SpanKind.SERVER,
            attributes: { 'http.request.method': ctx.method, 'url.path': ctx.path, 'url.scheme': ctx.protocol, 'http.route': `/hooks/${upstream}`, 'countersign.upstream': upstream },
          },
          parent,
        );
        try {
          await ingressContext.run(trace.setSpan(parent, span), next);
        } finally {
          span.setAttribute('http.response.status_code', ctx.status);
          if (ctx.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        }
      };
    },
    deliverer(inner) {
      return {
        async post(url, body, headers, timeoutMs) {
          const parent = ingressContext.getStore() ?? ROOT_CONTEXT;
          const target = new URL(url);
          const span = tracer.startSpan(
            'POST',
            { kind: SpanKind.CLIENT, attributes: { 'http.request.method': 'POST', 'server.address': target.hostname, 'server.port': portOf(target), 'url.full': `${target.origin}${target.pathname}` } },
            parent,
          );
          const out = { ...headers };
          propagator.inject(trace.setSpan(parent, span), out, recordSetter);
          const outcome = await inner.post(url, body, out, timeoutMs);
          if (outcome.status !== undefined) span.setAttribute('http.response.status_code', outcome.status);
          if (!outcome.ok) {
            span.setAttribute('error.type', outcome.timedOut ? 'timeout' : outcome.status !== undefined ? String(outcome.status) : 'unreachable');
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          span.end();
          return outcome;
        },
        close: () => inner.close(),
      };
    },
    shutdown: () => provider.shutdown(),
  };
}

function portOf(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

class ProxyRequestTrace implements RequestTrace {
  readonly #o: Otel;
  readonly #tracer: Tracer;
  readonly #span: Span;
  readonly #context: Context;
  readonly #method: string;

  constructor(o: Otel, tracer: Tracer, req: IncomingMessage) {
    this.#o = o;
    this.#tracer = tracer;
    const { ROOT_CONTEXT, SpanKind, trace } = o.api;
    const parent = o.propagator.extract(ROOT_CONTEXT, req.headers, headerGetter);
    const method = req.method ?? 'GET';
    this.#method = method;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.#span = tracer.startSpan(
      method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': q < 0 ? url : url.slice(0, q), 'url.scheme': 'http', 'network.protocol.version': req.httpVersion } },
      parent,
    );
    this.#context = trace.setSpan(parent, this.#span);
  }

  route(upstream: string, path: string): void {
    const route = `/${upstream}${path}`;
    this.#span.updateName(`${this.#method} ${route}`);
    this.#span.setAttributes({ 'http.route': route, 'countersign.upstream': upstream });
  }

  attempt(origin: string, req: UpstreamRequest, resendCount: number, retryReason: string | undefined): AttemptTrace {
    const { SpanKind, SpanStatusCode, trace } = this.#o.api;
    const target = new URL(origin);
    const q = req.path.indexOf('?');
    const attributes: Attributes = {
      'http.request.method': req.method,
      'server.address': target.hostname,
      'server.port': portOf(target),
      'url.full': `${target.origin}${q < 0 ? req.path : req.path.slice(0, q)}`,
    };
    if (resendCount > 0) attributes['http.request.resend_count'] = resendCount;
    if (retryReason !== undefined) attributes['countersign.retry.reason'] = retryReason;
    const span = this.#tracer.startSpan(req.method, { kind: SpanKind.CLIENT, attributes }, this.#context);
    const headers = { ...req.headers };
    delete headers.tracestate;
    this.#o.propagator.inject(trace.setSpan(this.#context, span), headers, recordSetter);
    return {
      request: { ...req, headers },
      end(status, cls) {
        span.setAttributes({ 'http.response.status_code': status, 'countersign.class': cls });
        if (status >= 400 || cls !== 'success') span.setStatus({ code: SpanStatusCode.ERROR });
        if (status >= 400) span.setAttribute('error.type', String(status));
        span.end();
      },
      fail(errorCode, cls) {
        span.setAttributes({ 'error.type': errorCode, 'countersign.class': cls });
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  }

  async wait<T>(name: string, work: Promise<T>, attributes?: Attributes): Promise<T> {
    const { SpanKind, SpanStatusCode } = this.#o.api;
    const span = this.#tracer.startSpan(name, { kind: SpanKind.INTERNAL, ...(attributes && { attributes }) }, this.#context);
    try {
      return await work;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string') span.setAttribute('error.type', code);
      throw err;
    } finally {
      span.end();
    }
  }

  retry(reason: string): void {
    this.#span.addEvent('countersign.retry', { 'countersign.retry.reason': reason });
  }

  end(status: number, cls: string, errorCode: string | undefined): void {
    this.#span.setAttributes({ 'http.response.status_code': status, 'countersign.class': cls });
    if (errorCode !== undefined) this.#span.setAttribute('error.type', errorCode);
    if (status >= 500) this.#span.setStatus({ code: this.#o.api.SpanStatusCode.ERROR });
    this.#span.end();
  }
}
