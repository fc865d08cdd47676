import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { OAuthConfig } from '../config/ingress-schema.js';
import type { Logger } from '../observability/logger.js';
import type { AuthorizationResult, AuthorizationVia, Metrics } from '../observability/metrics.js';
import { claimOnce, doneValue } from './claims.js';
import { KeetaRefusal, type KeetaMerchants } from './keeta-merchants.js';
import type { IngressStore } from './state-store.js';

/** Keeta authorization codes live 10 minutes; so do the states of our links. */
export const STATE_LIFETIME_MS = 10 * 60_000;
/** A claimed code is remembered a while longer than it could be valid. */
const CODE_MEMORY_MS = 30 * 60_000;
/** A second arrival waits this long for the first one's outcome. */
const WAIT_FOR_FIRST_MS = 15_000;

export interface AuthorizationLink {
  url: string;
  state: string;
  expiresAt: string;
}

export interface ConnectOutcome {
  result: AuthorizationResult;
  /** Set when connected or already connected. */
  brandName?: string;
  shopCount?: number;
  merchant?: string;
  /** Why not connected, for the merchant's page (no code, state or token in it). */
  reason?: string;
}

/**
 * Merchant authorization of one Keeta upstream (docs/protocols.md 1.6): single-use `state`s for
 * the links the admin API hands out, and the exchange of the code that comes back by the browser
 * redirect or by Event 1. The code is claimed in the shared store before it is exchanged, so a
 * code arriving by both paths (or twice, on two replicas) is exchanged once; the second arrival
 * waits for the first and reports its outcome.
 *
 * Keys hold SHA-256 digests of states and codes, never the values themselves.
 */
export class KeetaAuthorizations {
  constructor(
    private readonly deps: {
      upstream: string;
      appId: string;
      oauth: OAuthConfig;
      merchants: KeetaMerchants;
      store: IngressStore;
      clock: Clock;
      metrics: Metrics;
      log: Logger;
    },
  ) {}

  async createLink(): Promise<AuthorizationLink> {
    const { upstream, appId, oauth, store, clock } = this.deps;
    const state = randomBytes(32).toString('base64url');
    const expiresAt = clock.now() + STATE_LIFETIME_MS;
    await store.put(this.#stateKey(state), JSON.stringify({ expiresAt }), STATE_LIFETIME_MS);
    const q = new URLSearchParams({ responseType: 'authorization_code', appId, redirectUri: oauth.redirectUri, state, scope: 'all' });
    this.deps.log.info({ upstream, expiresAt: new Date(expiresAt).toISOString() }, 'merchant authorization link created');
    return { url: `${oauth.authorizeUrl}?${q.toString()}`, state, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** The merchant declined on Keeta's page (`?error=access_denied`): nothing to exchange. */
  declined(): ConnectOutcome {
    this.deps.metrics.authorizations.inc({ upstream: this.deps.upstream, via: 'redirect', result: 'refused' });
    this.deps.log.info({ upstream: this.deps.upstream, via: 'redirect', result: 'refused' }, 'merchant declined the authorization');
    return { result: 'refused', reason: 'The authorization was declined on the Keeta page.' };
  }

  async complete(code: string | undefined, state: string | undefined, via: AuthorizationVia): Promise<ConnectOutcome> {
    const outcome = await this.#complete(code, state, via).catch((err: unknown): ConnectOutcome => {
      this.deps.log.error({ upstream: this.deps.upstream, via, err: (err as Error).message }, 'merchant authorization failed');
      return { result: 'failed', reason: 'The connection could not be completed because of an internal error. Try again with a new link.' };
    });
    this.deps.metrics.authorizations.inc({ upstream: this.deps.upstream, via, result: outcome.result });
    this.deps.log.info(
      { upstream: this.deps.upstream, via, result: outcome.result, ...(outcome.merchant && { merchant: outcome.merchant }), ...(outcome.shopCount !== undefined && { shops: outcome.shopCount }) },
      'merchant authorization',
    );
    return outcome;
  }

  async #complete(code: string | undefined, state: string | undefined, via: AuthorizationVia): Promise<ConnectOutcome> {
    const { store, clock, merchants } = this.deps;
    if (!code || code.length > 512) return { result: 'bad_state', reason: 'The link carries no authorization code.' };
    const codeKey = this.#codeKey(code);

    // A code already handled reports its outcome, whatever state it came with now: its state
    // was consumed by the first arrival.
    const earlier = await doneValue(store, codeKey);
    if (earlier !== undefined) return again(earlier, state);

    if (!state || state.length > 512) return { result: 'bad_state', reason: 'The link carries no state: use a link from the authorization API.' };
    const stateKey = this.#stateKey(state);
    const saved = await store.get(stateKey);
    if (saved === undefined || (JSON.parse(saved) as { expiresAt: number }).expiresAt <= clock.now()) {
      const badState: ConnectOutcome = { result: 'bad_state', reason: 'This authorization link is unknown or has expired (links work once, for 10 minutes).' };
      // The same code on its other path may hold the state right now: its outcome is ours.
      if ((await store.get(codeKey)) === undefined) return badState;
      const other = await claimOnce(store, codeKey, { leaseMs: CODE_MEMORY_MS, waitMs: WAIT_FOR_FIRST_MS });
      if (other.kind === 'done') return again(other.payload, state);
      if (other.kind === 'busy') return { result: 'already_connected', reason: 'This authorization is being completed; reload the page in a moment.' };
      await other.claim.release();
      return badState;
    }

    const claimed = await claimOnce(store, codeKey, { leaseMs: CODE_MEMORY_MS, waitMs: WAIT_FOR_FIRST_MS });
    if (claimed.kind === 'done') return again(claimed.payload, state);
    if (claimed.kind === 'busy') return { result: 'already_connected', reason: 'This authorization is being completed; reload the page in a moment.' };
    const { claim } = claimed;

    if ((await store.take(stateKey)) === undefined) {
      // The state was used by another code meanwhile: links are single-use.
      await claim.release();
      return { result: 'bad_state', reason: 'This authorization link has already been used.' };
    }

    // From here the code is spent whatever happens: it is never exchanged again.
    let pair;
    try {
      pair = await merchants.exchangeCode(code);
    } catch (err) {
      const refused = err instanceof KeetaRefusal;
      const outcome: ConnectOutcome = refused
        ? { result: 'refused', reason: 'Keeta did not accept the authorization code (it may be used or expired).' }
        : { result: 'failed', reason: 'Keeta could not be reached to complete the connection. Try again with a new link.' };
      this.deps.log.warn({ upstream: this.deps.upstream, via, err: (err as Error).message }, 'authorization code exchange failed');
      await claim.complete(JSON.stringify(outcome), CODE_MEMORY_MS);
      return outcome;
    }

    let merchant: string;
    let brandName = '';
    let shopIds: string[] = [];
    let first;
    try {
      first = await merchants.resourcePage(pair.accessToken, 1);
      merchant = merchants.merchantIdFor(first);
      brandName = first.brandName;
      shopIds = first.shopIds;
    } catch (err) {
      // The pair is precious (the code is spent): keep it under a provisional id.
      merchant = `pending-${randomBytes(4).toString('hex')}`;
      this.deps.log.error({ upstream: this.deps.upstream, merchant, err: (err as Error).message }, "a connected merchant's shops could not be read; its pair is stored under a provisional id");
    }
    // Durable before anything else can fail.
    try {
      await merchants.storePair(merchant, pair, shopIds);
    } catch (err) {
      this.deps.log.error(
        { upstream: this.deps.upstream, merchant, err: (err as Error).message },
        'the new pair could not be written to the token store; the merchant must authorize again',
      );
      const outcome: ConnectOutcome = { result: 'failed', reason: 'The connection could not be saved. Try again with a new link.' };
      await claim.complete(JSON.stringify(outcome), CODE_MEMORY_MS).catch(() => false);
      return outcome;
    }
    if (first && first.totalPage > 1) {
      const all = await merchants.allResources(pair.accessToken, first);
      shopIds = all.shopIds;
      await merchants.updateShops(merchant, shopIds);
    }
    const outcome: ConnectOutcome = { result: 'connected', brandName, shopCount: shopIds.length, merchant };
    // Remembered with the digest of the state the code came with: only that state (the same
    // merchant's redirect after its Event 1, a reload) is shown the brand again.
    await claim.complete(JSON.stringify({ ...outcome, stateDigest: digest(state) }), CODE_MEMORY_MS);
    return outcome;
  }

  #stateKey(state: string): string {
    return `ingress:${this.deps.upstream}:state:${digest(state)}`;
  }

  #codeKey(code: string): string {
    return `ingress:${this.deps.upstream}:code:${digest(code)}`;
  }
}

/**
 * The outcome for a code seen before. The brand and shop count are shown only to an arrival
 * carrying the state the code was completed with: a used code replayed without it (or with
 * another) learns that it was used, nothing about the merchant.
 */
function again(payload: string, state: string | undefined): ConnectOutcome {
  const { stateDigest, ...first } = JSON.parse(payload) as ConnectOutcome & { stateDigest?: string };
  if (first.result === 'connected' || first.result === 'already_connected') {
    if (state !== undefined && stateDigest !== undefined && stateDigest === digest(state)) return { ...first, result: 'already_connected' };
    return { result: 'already_connected', ...(first.merchant && { merchant: first.merchant }), reason: 'This authorization code was already used.' };
  }
  return { result: first.result === 'refused' ? 'refused' : 'failed', reason: 'This authorization code was already used.' };
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
