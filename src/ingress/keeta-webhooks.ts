import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Clock } from '../core/clock.js';
import type { WebhooksConfig } from '../config/ingress-schema.js';
import { getField, JsonSyntaxError, parseJsonText, type JsonNode, type JsonObjectNode } from '../provider/steps/json-text.js';
import type { Logger } from '../observability/logger.js';
import type { InboundResult, Metrics } from '../observability/metrics.js';
import { decodeUtf8 } from '../proxy/upstream.js';
import type { TokenCache } from '../tokens/token-cache.js';
import { claimOnce } from './claims.js';
import type { Deliverer } from './delivery.js';
import { keetaEventLabel } from './event-labels.js';
import type { KeetaMerchants } from './keeta-merchants.js';
import { ShopRereads } from './shop-rereads.js';
import { createSourceCheck, type SourceCheck } from './source-ips.js';
import type { IngressStore } from './state-store.js';
import { matchingRecipe } from './webhook-signature.js';

/** What the route answers Keeta: an HTTP status (200 = `{"code":0,"message":"Success"}`) and a reason. */
export interface WebhookAnswer {
  status: number;
  message?: string;
}

export interface WebhookRequest {
  peerIp: string;
  forwardedFor: string | undefined;
  body: Buffer;
}

/**
 * One Keeta upstream's webhooks (POST /hooks/{u}), in order: source address, JSON, signature
 * (candidate recipes; enforce, observe or off), timestamp window, dedupe by messageId across
 * replicas, store-authorization events (verified pushes only), delivery to the mapped internal
 * targets. The answer
 * is a success only when every target accepted the push (or it duplicates a delivered one).
 */
export class KeetaWebhooks {
  readonly #source: SourceCheck;
  readonly #authEvents: ReadonlySet<number>;
  readonly #rereads: ShopRereads;

  constructor(
    private readonly deps: {
      upstream: string;
      cfg: WebhooksConfig;
      appSecret: string;
      merchants: KeetaMerchants;
      cache: TokenCache;
      store: IngressStore;
      deliverer: Deliverer;
      clock: Clock;
      metrics: Metrics;
      log: Logger;
    },
  ) {
    this.#source = createSourceCheck(deps.cfg.sourceIps, deps.cfg.trustedProxies);
    const a = deps.cfg.authorizationEvents;
    this.#authEvents = new Set([a.added, a.cancelled, a.revoked]);
    this.#rereads = new ShopRereads({
      limit: { burst: deps.cfg.shopRereads.burst, intervalMs: deps.cfg.shopRereads.interval },
      clock: deps.clock,
      read: (m, revokeIfEmpty) => this.#reread(m, revokeIfEmpty),
    });
  }

  /** Event 1 and every POST pass the same source check. */
  sourceAllowed(peerIp: string, forwardedFor: string | undefined): boolean {
    return this.#source.allowed(this.#source.clientIp(peerIp, forwardedFor));
  }

  async handle(req: WebhookRequest): Promise<WebhookAnswer> {
    const started = performance.now();
    const { upstream, log } = this.deps;
    let event = 'other';
    let messageId: string | undefined;
    let recipe: string | undefined;
    const finish = (r: InboundResult, answer: WebhookAnswer): WebhookAnswer => {
      this.deps.metrics.inbound.inc({ upstream, event, result: r });
      log.info(
        { upstream, event, ...(messageId && { messageId }), result: r, status: answer.status, ...(recipe && { recipe }), durationMs: Math.round((performance.now() - started) * 10) / 10, ...(answer.status !== 200 && { reason: answer.message }) },
        'webhook',
      );
      return answer;
    };

    const client = this.#source.clientIp(req.peerIp, req.forwardedFor);
    if (!this.#source.allowed(client)) {
      log.warn({ upstream, sourceIp: client }, 'webhook from an address not in webhooks.sourceIps');
      return finish('forbidden_source', { status: 403, message: 'source address not allowed' });
    }

    if (req.body.length === 0) return { status: 200 }; // Keeta's empty heartbeat POSTs: nothing to deliver
    const body = parseObject(req.body);
    if (typeof body === 'string') return finish('bad_request', { status: 400, message: body });
    const eventId = numberText(getField(body, 'eventId'));
    event = keetaEventLabel(eventId, this.#authEvents);
    messageId = idText(getField(body, 'messageId'));
    const sigNode = getField(body, 'sig');
    const timestamp = numberText(getField(body, 'timestamp'));
    if (eventId === undefined || messageId === undefined || timestamp === undefined) {
      return finish('bad_request', { status: 400, message: 'eventId, messageId and timestamp are required' });
    }

    const { cfg } = this.deps;
    let verified = false;
    if (cfg.verify !== 'off') {
      const matched = sigNode?.kind === 'string' ? matchingRecipe(cfg.recipes, cfg.url, body, sigNode.value, this.deps.appSecret) : undefined;
      recipe = matched ?? 'none';
      this.deps.metrics.recipeMatches.inc({ upstream, recipe });
      verified = matched !== undefined;
      if (!verified && cfg.verify === 'enforce') return finish('bad_signature', { status: 401, message: 'signature does not match' });
      const skewMs = Math.abs(this.deps.clock.now() - Number(timestamp) * 1000);
      if (!(skewMs <= cfg.timestampWindow)) return finish('stale', { status: 400, message: 'timestamp outside the accepted window' });
    }

    // Only a push whose signature verified (or every push, with verify: off) is believed: an
    // unverified one (observe) is delivered, flagged, but changes nothing in the gateway and
    // has a dedupe set of its own, so a forged copy cannot burn a genuine message id.
    const trusted = verified || cfg.verify === 'off';
    const shopId = idText(getField(body, 'shopId'));
    const merchant = shopId === undefined ? undefined : this.deps.cache.merchantForShop(upstream, shopId);
    const targets = this.#targets(Number(eventId));

    const key = trusted ? `ingress:${upstream}:msg:${messageId}` : `ingress:${upstream}:msg-unverified:${messageId}:${createHash('sha256').update(req.body).digest('hex')}`;
    const claimed = await claimOnce(this.deps.store, key, { leaseMs: cfg.timeout * 3 + 30_000, waitMs: cfg.timeout + 2000 });
    if (claimed.kind === 'done') return finish('duplicate', { status: 200 });
    if (claimed.kind === 'busy') return finish('duplicate', { status: 409, message: 'this message is being delivered; retry later' });

    if (trusted) {
      try {
        await this.#authorizationEvent(Number(eventId), shopId, body);
      } catch (err) {
        await claimed.claim.release();
        log.warn({ upstream, event, err: (err as Error).message }, 'store-authorization event could not be applied');
        return finish('delivery_failed', { status: 502, message: 'the authorization change could not be applied' });
      }
    } else if (this.#authEvents.has(Number(eventId))) {
      log.warn({ upstream, event, messageId }, 'an unverified store-authorization event was not acted on (webhooks.verify: observe)');
    }

    const headers: Record<string, string> = {
      'x-countersign-upstream': upstream,
      'x-countersign-event': eventId,
      'x-countersign-message-id': messageId,
      'x-countersign-verified': String(verified),
      ...(merchant !== undefined && { 'x-countersign-merchant': merchant }),
    };
    const t0 = performance.now();
    const outcomes = await Promise.all(targets.map((url) => this.deps.deliverer.post(url, req.body, headers, cfg.timeout)));
    this.deps.metrics.inboundDelivery.observe({ upstream, event }, (performance.now() - t0) / 1000);
    const failed = outcomes.filter((o) => !o.ok);
    if (failed.length > 0) {
      await claimed.claim.release();
      for (const f of failed) log.warn({ upstream, event, messageId, target: f.url, err: f.error }, 'webhook delivery failed; Keeta will retry');
      return finish('delivery_failed', { status: 502, message: 'an internal target did not accept the push' });
    }
    await claimed.claim.complete('1', cfg.dedupeFor);
    if (targets.length === 0) log.info({ upstream, event }, 'no delivery target for this event; acknowledged');
    return finish(trusted ? 'delivered' : 'unverified', { status: 200 });
  }

  /** The URLs of the rules naming the event, else of the "*" rule. */
  #targets(eventId: number): string[] {
    const named = this.deps.cfg.deliver.filter((d) => d.events.includes(eventId)).map((d) => d.url);
    if (named.length > 0) return named;
    return this.deps.cfg.deliver.filter((d) => d.events.includes('*')).map((d) => d.url);
  }

  /** 1301/1302 re-read the merchant's shops, 1303 marks it revoked (ids configurable). */
  async #authorizationEvent(eventId: number, shopId: string | undefined, body: JsonObjectNode): Promise<void> {
    const a = this.deps.cfg.authorizationEvents;
    if (!this.#authEvents.has(eventId)) return;
    const { merchants, cache, upstream, log } = this.deps;
    let merchant = shopId === undefined ? undefined : cache.merchantForShop(upstream, shopId);
    if (merchant === undefined) {
      const brandId = brandIdOf(body);
      if (brandId !== undefined && cache.get(upstream, `brand-${brandId}`)) merchant = `brand-${brandId}`;
    }
    if (eventId === a.revoked && eventId !== a.added && eventId !== a.cancelled) {
      if (merchant === undefined) {
        log.warn({ upstream, eventId }, 'authorization revoked for a merchant this gateway does not know');
        return;
      }
      await merchants.markRevoked(merchant);
      log.warn({ upstream, merchant }, 'merchant revoked its authorization');
      return;
    }
    // Added or cancelled: the merchant's shops changed. A new shop is not indexed yet, so
    // without a known merchant every live merchant of the upstream is re-read. Re-reads are
    // limited per merchant (webhooks.shopRereads); the push waits for them at most `timeout`.
    const which = merchant !== undefined ? [merchant] : [...cache.records(upstream)].filter((r) => r.revokedAt === undefined).map((r) => r.merchant);
    const reads = which.map((m) => this.#rereads.request(m, eventId === a.cancelled));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.deps.cfg.timeout);
    });
    try {
      const outcome = await Promise.race([Promise.all(reads), late]);
      if (outcome === 'late') log.info({ upstream, event: String(eventId), merchants: which.length }, 'shop re-reads are still waiting for their per-merchant rate; acknowledged, they follow');
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.#rereads.close();
  }

  /** Re-read one merchant's shops (the ShopRereads limiter decides when). */
  async #reread(m: string, revokeIfEmpty: boolean): Promise<number> {
    const { merchants, upstream, log } = this.deps;
    try {
      const count = await merchants.refreshShops(m);
      log.info({ upstream, merchant: m, shops: count }, "merchant's shops re-read after an authorization change");
      if (count === 0 && revokeIfEmpty) await merchants.markRevoked(m);
      return count;
    } catch (err) {
      log.warn({ upstream, merchant: m, err: (err as Error).message }, "merchant's shops could not be re-read after an authorization change");
      throw err;
    }
  }
}

function parseObject(raw: Buffer): JsonObjectNode | string {
  const text = decodeUtf8(raw);
  if (text === undefined) return 'the body is not valid UTF-8';
  try {
    const node = parseJsonText(text);
    return node.kind === 'object' ? node : 'the body must be a JSON object';
  } catch (err) {
    if (err instanceof JsonSyntaxError) return `the body is not valid JSON: ${err.message}`;
    throw err;
  }
}

function numberText(node: JsonNode | undefined): string | undefined {
  if (node?.kind === 'number' && /^\d{1,20}$/.test(node.lexeme)) return node.lexeme;
  if (node?.kind === 'string' && /^\d{1,20}$/.test(node.value)) return node.value;
  return undefined;
}

/** Message ids and shop ids: digits (int64), as numbers or strings. */
function idText(node: JsonNode | undefined): string | undefined {
  if (node?.kind === 'string' && /^[A-Za-z0-9_.:-]{1,128}$/.test(node.value)) return node.value;
  return numberText(node);
}

/** `brandId` inside the event's `message` (a JSON document in a string), when there is one. */
function brandIdOf(body: JsonObjectNode): string | undefined {
  const message = getField(body, 'message');
  if (message?.kind !== 'string') return undefined;
  try {
    const inner = parseJsonText(message.value);
    return inner.kind === 'object' ? numberText(getField(inner, 'brandId')) : undefined;
  } catch {
    return undefined;
  }
}
