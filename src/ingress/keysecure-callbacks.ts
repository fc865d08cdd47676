import { performance } from 'node:perf_hooks';
import type { Clock } from '../core/clock.js';
import type { CallbacksConfig } from '../config/ingress-schema.js';
import { getField, JsonSyntaxError, parseJsonText, type JsonObjectNode } from '../provider/steps/json-text.js';
import type { Logger } from '../observability/logger.js';
import type { InboundResult, Metrics } from '../observability/metrics.js';
import { decodeUtf8 } from '../proxy/upstream.js';
import { callbackSignatureMatches, callbackSignText } from './callback-signature.js';
import { actionMismatch, envelopeCollision, signedContentDigest } from './callback-content.js';
import { claimOnce } from './claims.js';
import type { Deliverer } from './delivery.js';
import { keysecureActionLabel } from './event-labels.js';
import type { IngressStore } from './state-store.js';

/** HTTP status and `{code, message}` body for KeySecure. */
export interface CallbackAnswer {
  status: number;
  code: number;
  message: string;
}

export interface CallbackRequest {
  headers: Record<string, string | undefined>;
  body: Buffer;
}

const OK: CallbackAnswer = { status: 200, code: 0, message: '' };

/** What a delivered callback left in the dedupe set: the action it was delivered as, and its answer. */
interface StoredOutcome {
  action: string;
  answer: CallbackAnswer;
}

/**
 * One KeySecure upstream's callbacks (POST /hooks/{u}): data fields that collide with the signed
 * envelope refused, `action` believed only for data of its shape, Signature V1, timestamp window
 * (on the signed Timestamp), dedupe by signed content across replicas (callback-content.ts),
 * delivery by `action`. For `Auth` the target's own
 * `{code, message}` is the decision and goes back to KeySecure; a target that is late or fails
 * gets a failure answer within the rule's budget (default 700 ms, KeySecure waits 800 ms).
 * A duplicate of a delivered Auth gets the same decision again.
 */
export class KeySecureCallbacks {
  constructor(
    private readonly deps: {
      upstream: string;
      cfg: CallbacksConfig;
      /** callbacks.secret, else the upstream's apiSecret. */
      secret: string | undefined;
      store: IngressStore;
      deliverer: Deliverer;
      clock: Clock;
      metrics: Metrics;
      log: Logger;
    },
  ) {}

  async handle(req: CallbackRequest): Promise<CallbackAnswer> {
    const started = performance.now();
    const { upstream, cfg, log } = this.deps;
    let event = 'other';
    let pushId: string | undefined;
    const finish = (result: InboundResult, answer: CallbackAnswer): CallbackAnswer => {
      this.deps.metrics.inbound.inc({ upstream, event, result });
      log.info(
        { upstream, event, ...(pushId && { pushId }), result, status: answer.status, code: answer.code, durationMs: Math.round((performance.now() - started) * 10) / 10, ...(answer.code !== 0 && { reason: answer.message }) },
        'callback',
      );
      return answer;
    };

    const parsed = parseCallback(req.body);
    if (typeof parsed === 'string') return finish('bad_request', { status: 400, code: 400, message: parsed });
    const { id, action, data } = parsed;
    event = keysecureActionLabel(action);
    pushId = id;
    // A data field named like a signed envelope field would take its place in the signed map.
    const collision = envelopeCollision(data);
    if (collision !== undefined) return finish('bad_request', { status: 400, code: 400, message: `data.${collision}: not allowed, it collides with the signed ${collision}` });
    const mismatch = actionMismatch(action, data);
    if (mismatch !== undefined) return finish('bad_request', { status: 400, code: 400, message: `action ${action} does not match its data: ${mismatch}` });

    let verified = false;
    if (cfg.verify !== 'off') {
      const timestamp = req.headers['timestamp'];
      const signature = req.headers['signature'];
      const version = req.headers['sign-version'];
      if (timestamp !== undefined && !/^\d{1,16}$/.test(timestamp)) return finish('bad_request', { status: 400, code: 400, message: 'Timestamp: expected Unix milliseconds' });
      verified =
        timestamp !== undefined &&
        signature !== undefined &&
        (version === undefined || version === 'V1') &&
        this.deps.secret !== undefined &&
        callbackSignatureMatches(this.deps.secret, callbackSignText(cfg.appId ?? '', timestamp, data), signature);
      if (!verified && cfg.verify === 'enforce') return finish('bad_signature', { status: 401, code: 401, message: 'signature does not match' });
      // The window is checked on the very value the signature covers (the Timestamp header).
      if (verified && !(Math.abs(this.deps.clock.now() - Number(timestamp)) <= cfg.timestampWindow)) {
        return finish('stale', { status: 400, code: 400, message: 'Timestamp outside the accepted window' });
      }
    }
    const trusted = verified || cfg.verify === 'off';

    const rule = this.#rule(action);
    const isAuth = action === 'Auth';
    const budget = rule?.timeout ?? 5000;
    // Dedupe on what the signature covers, not on the unsigned id: the same signed data is one
    // callback whatever id or action it comes with (a KeySecure retry included), and a replay
    // under the id of a push still to come marks nothing of that push. Unverified callbacks
    // (observe) have a set of their own, so a forged one can never mark a genuine one as seen.
    const key = `ingress:${upstream}:${trusted ? 'callback' : 'callback-unverified'}:${signedContentDigest(data)}`;
    const claimed = await claimOnce(this.deps.store, key, { leaseMs: budget * 3 + 30_000, waitMs: isAuth ? budget : budget + 2000 });
    if (claimed.kind === 'done') {
      const first = JSON.parse(claimed.payload) as StoredOutcome;
      if (first.action === action) return finish('duplicate', first.answer);
      log.warn({ upstream, event, pushId: id, firstAction: keysecureActionLabel(first.action) }, 'a callback already received under another action came again; not delivered');
      return finish('duplicate', { status: isAuth ? 200 : 409, code: 409, message: 'this callback was already received under another action' });
    }
    if (claimed.kind === 'busy') return finish('duplicate', { status: isAuth ? 200 : 409, code: 409, message: 'this push is being delivered' });
    const complete = (answer: CallbackAnswer) => claimed.claim.complete(JSON.stringify({ action, answer } satisfies StoredOutcome), cfg.dedupeFor);
    const release = () => claimed.claim.release();

    if (!rule) {
      await complete(OK);
      log.info({ upstream, event }, 'no delivery target for this action; acknowledged');
      return finish(trusted ? 'delivered' : 'unverified', OK);
    }

    const headers: Record<string, string> = {
      'x-countersign-upstream': upstream,
      'x-countersign-event': action,
      'x-countersign-message-id': id,
      'x-countersign-verified': String(verified),
    };
    const t0 = performance.now();
    // The budget counts from the callback's arrival: time spent verifying and claiming is spent.
    const timeoutMs = isAuth ? Math.max(50, Math.floor(rule.timeout - (t0 - started))) : rule.timeout;
    const out = await this.deps.deliverer.post(rule.url, req.body, headers, timeoutMs);
    this.deps.metrics.inboundDelivery.observe({ upstream, event }, (performance.now() - t0) / 1000);

    if (!out.ok) {
      await release();
      log.warn({ upstream, event, pushId: id, target: rule.url, err: out.error }, isAuth ? 'Auth callback not decided in time; answered with a failure' : 'callback delivery failed');
      const answer: CallbackAnswer = out.timedOut
        ? { status: isAuth ? 200 : 504, code: 504, message: `the authorization service did not answer within ${rule.timeout} ms` }
        : { status: isAuth ? 200 : 502, code: 502, message: 'the internal target did not accept the callback' };
      return finish('delivery_failed', answer);
    }

    let answer = OK;
    if (isAuth) {
      const decision = readDecision(out.body);
      if (!decision) {
        await release();
        return finish('delivery_failed', { status: 200, code: 502, message: 'the authorization service answered without {code, message}' });
      }
      answer = { status: 200, ...decision };
    }
    await complete(answer);
    return finish(trusted ? 'delivered' : 'unverified', answer);
  }

  #rule(action: string): CallbacksConfig['deliver'][number] | undefined {
    return this.deps.cfg.deliver.find((d) => d.actions.includes(action)) ?? this.deps.cfg.deliver.find((d) => d.actions.includes('*'));
  }
}

function parseCallback(raw: Buffer): { id: string; action: string; data: JsonObjectNode } | string {
  const text = decodeUtf8(raw);
  if (text === undefined) return 'the body is not valid UTF-8';
  let node;
  try {
    node = parseJsonText(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) return `the body is not valid JSON: ${err.message}`;
    throw err;
  }
  if (node.kind !== 'object') return 'the body must be a JSON object';
  const id = getField(node, 'id');
  const action = getField(node, 'action');
  const data = getField(node, 'data');
  const idText = id?.kind === 'string' ? id.value : id?.kind === 'number' ? id.lexeme : '';
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(idText)) return 'id: required, 1-128 letters, digits, _ . : -';
  if (action?.kind !== 'string' || !/^[A-Za-z_]{1,64}$/.test(action.value)) return 'action: required';
  if (data?.kind !== 'object') return 'data: required, an object';
  return { id: idText, action: action.value, data };
}

/** The Auth target's `{code, message}`: code a whole number, message a string (may be empty). */
function readDecision(body: Buffer | undefined): { code: number; message: string } | undefined {
  try {
    const v = JSON.parse(body?.toString('utf8') ?? '') as { code?: unknown; message?: unknown };
    if (typeof v.code === 'number' && Number.isInteger(v.code) && (v.message === undefined || typeof v.message === 'string')) {
      return { code: v.code, message: v.message ?? '' };
    }
  } catch {
    /* not JSON */
  }
  return undefined;
}
