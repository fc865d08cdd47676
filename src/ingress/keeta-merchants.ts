import type { Clock } from '../core/clock.js';
import type { KeetaUpstreamConfig } from '../config/schema.js';
import { getField, jsonNumber, jsonObject, jsonString, parseJsonText, type JsonNode } from '../provider/steps/json-text.js';
import { signKeetaAppCall, signKeetaRequest } from '../provider/steps/sorted-json-body-sign.js';
import { KEETA_TOKEN_PATH, parseTokenResponse, type KeetaTokenPair } from '../provider/builtin/keeta-token-source.js';
import type { Logger } from '../observability/logger.js';
import type { Forwarder } from '../proxy/forwarder.js';
import { decodeUtf8, splitBaseUrl } from '../proxy/upstream.js';
import type { TokenCache } from '../tokens/token-cache.js';
import type { TokenService } from '../tokens/token-service.js';
import type { TokenRecord, TokenStore } from '../tokens/types.js';

export const RESOURCE_PATH = '/base/authorized/resource/get';
const PAGE_SIZE = 200;
const MAX_PAGES = 1000;

/** Keeta answered, and said no (a non-zero code). The message is Keeta's, never a token. */
export class KeetaRefusal extends Error {
  override readonly name = 'KeetaRefusal';
}

/** What `/base/authorized/resource/get` says about an authorization. */
export interface AuthorizedResources {
  brandId: string | undefined;
  brandName: string;
  userId: string | undefined;
  /** Exact decimal strings (int64). */
  shopIds: string[];
}

/**
 * The Keeta calls and store writes behind a merchant's connection: exchange an authorization
 * code (signed app-level call, answer flat or wrapped), read every page of the authorized shops,
 * write the pair durably under the merchant's refresh lock, update its shops, mark it revoked.
 */
export class KeetaMerchants {
  readonly #origin: string;
  readonly #basePath: string;
  readonly #signBase: string;

  constructor(
    private readonly deps: {
      upstream: string;
      cfg: KeetaUpstreamConfig;
      forwarder: Forwarder;
      clock: Clock;
      store: TokenStore;
      cache: TokenCache;
      tokens: TokenService;
      log: Logger;
    },
  ) {
    const { origin, basePath } = splitBaseUrl(deps.cfg.baseUrl);
    this.#origin = origin;
    this.#basePath = basePath;
    this.#signBase = deps.cfg.signUrlBase ?? deps.cfg.baseUrl;
  }

  get upstream(): string {
    return this.deps.upstream;
  }

  /** `grantType: authorization_code`. Throws KeetaRefusal when Keeta says no, other errors when it cannot be asked. */
  async exchangeCode(code: string): Promise<KeetaTokenPair> {
    const { cfg, clock } = this.deps;
    const signed = signKeetaAppCall(`${this.#signBase}${KEETA_TOKEN_PATH}`, cfg.appSecret, cfg.appId, Math.floor(clock.now() / 1000), [
      ['grantType', jsonString('authorization_code')],
      ['code', jsonString(code)],
    ]);
    const res = await this.#post(KEETA_TOKEN_PATH, signed.body, 'token');
    if (res.status < 200 || res.status >= 300) throw new Error(`Keeta's token endpoint answered HTTP ${res.status}`);
    const refusal = envelopeRefusal(res.body);
    if (refusal) throw new KeetaRefusal(refusal);
    return parseTokenResponse(res.status, res.body);
  }

  /** One page of the authorization's resources, read with its access token. */
  async resourcePage(accessToken: string, pageNum: number): Promise<AuthorizedResources & { totalPage: number; total: number | undefined }> {
    const { cfg, clock } = this.deps;
    const signed = signKeetaRequest({
      signUrl: `${this.#signBase}${RESOURCE_PATH}`,
      appSecret: cfg.appSecret,
      appId: cfg.appId,
      timestampSec: Math.floor(clock.now() / 1000),
      accessToken,
      body: jsonObject([
        ['pageNum', jsonNumber(pageNum)],
        ['pageSize', jsonNumber(PAGE_SIZE)],
      ]),
    });
    const res = await this.#post(RESOURCE_PATH, signed.body);
    const text = decodeUtf8(res.body);
    let root: JsonNode;
    try {
      root = parseJsonText(text ?? '');
    } catch {
      throw new Error(`Keeta answered ${RESOURCE_PATH} with HTTP ${res.status} and a body that is not JSON`);
    }
    if (root.kind !== 'object') throw new Error(`Keeta answered ${RESOURCE_PATH} with an unexpected body`);
    const code = getField(root, 'code');
    if (code?.kind !== 'number' || code.lexeme !== '0') {
      const message = getField(root, 'message');
      throw new KeetaRefusal(`Keeta refused ${RESOURCE_PATH}: code ${code?.kind === 'number' ? code.lexeme : '?'}${message?.kind === 'string' ? ` (${message.value.slice(0, 200)})` : ''}`);
    }
    const data = getField(root, 'data');
    if (data?.kind !== 'object') throw new Error(`Keeta's ${RESOURCE_PATH} answer has no data`);
    const shopsNode = getField(data, 'authorizedShops');
    const shopIds: string[] = [];
    if (shopsNode?.kind === 'array') {
      for (const shop of shopsNode.items) {
        const id = shop.kind === 'object' ? idText(getField(shop, 'id')) : undefined;
        if (id !== undefined) shopIds.push(id);
      }
    }
    const page = getField(data, 'page');
    const totalPage = page?.kind === 'object' ? Number(idText(getField(page, 'totalPage')) ?? '1') : 1;
    const totalText = page?.kind === 'object' ? idText(getField(page, 'total')) : undefined;
    const brandName = getField(data, 'brandName');
    return {
      brandId: idText(getField(data, 'brandId')),
      brandName: brandName?.kind === 'string' ? brandName.value : '',
      userId: textOf(getField(data, 'userId')),
      shopIds,
      totalPage: Number.isSafeInteger(totalPage) ? totalPage : 1,
      total: totalText === undefined ? undefined : Number(totalText),
    };
  }

  /** Every page, from `first` (page 1, when already read) on. */
  async allResources(accessToken: string, first?: Awaited<ReturnType<KeetaMerchants['resourcePage']>>): Promise<AuthorizedResources> {
    const p1 = first ?? (await this.resourcePage(accessToken, 1));
    const shops = new Set(p1.shopIds);
    for (let n = 2; n <= Math.min(p1.totalPage, MAX_PAGES); n++) {
      const p = await this.resourcePage(accessToken, n);
      if (p.shopIds.length === 0) break;
      for (const s of p.shopIds) shops.add(s);
    }
    return { brandId: p1.brandId, brandName: p1.brandName, userId: p1.userId, shopIds: [...shops] };
  }

  /**
   * The merchant id of an authorization: a merchant that already owns one of its shops keeps
   * its id (a re-authorization); else `brand-<brandId>` for a chain (more than one shop) and
   * `shop-<shopId>` for a single store.
   */
  merchantIdFor(res: { brandId: string | undefined; userId: string | undefined; shopIds: string[]; total?: number | undefined }): string {
    for (const shop of res.shopIds) {
      const owner = this.deps.cache.merchantForShop(this.deps.upstream, shop);
      if (owner !== undefined) return owner;
    }
    const count = Math.max(res.total ?? 0, res.shopIds.length);
    if (count === 1) return `shop-${res.shopIds[0]}`;
    if (res.brandId !== undefined) return `brand-${res.brandId}`;
    const user = (res.userId ?? '').replace(/[^A-Za-z0-9._-]/g, '').slice(0, 100);
    return user ? `user-${user}` : `auth-${this.deps.clock.now().toString(36)}`;
  }

  /** Write a newly issued pair durably (under the merchant's refresh lock), then serve it. */
  async storePair(merchant: string, pair: KeetaTokenPair, shopIds: string[]): Promise<TokenRecord> {
    const { upstream, clock } = this.deps;
    const record: TokenRecord = {
      upstream,
      merchant,
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      issuedAt: pair.issuedAtTime,
      expiresAt: pair.issuedAtTime + pair.expiresIn * 1000,
      refreshedAt: clock.now(),
      shopIds,
    };
    await this.#underLock(merchant, async () => {
      await this.#put(record);
    });
    this.deps.tokens.forget(merchant);
    return this.deps.cache.set(record);
  }

  /** Replace the stored shops of a merchant (same pair), under its refresh lock. */
  async updateShops(merchant: string, shopIds: string[]): Promise<void> {
    await this.#underLock(merchant, async () => {
      const current = await this.deps.store.get(this.deps.upstream, merchant);
      if (!current) return;
      const next = { ...current, shopIds };
      await this.#put(next);
      this.deps.cache.set(next);
    });
  }

  /** Mark a merchant's authorization revoked: never renewed or used again until it connects anew. */
  async markRevoked(merchant: string): Promise<void> {
    await this.#underLock(merchant, async () => {
      const current = await this.deps.store.get(this.deps.upstream, merchant);
      if (!current || current.revokedAt !== undefined) return;
      const next = { ...current, revokedAt: this.deps.clock.now() };
      await this.#put(next);
      this.deps.cache.set(next);
    });
  }

  /** Re-read a connected merchant's shops with its current token and store them. */
  async refreshShops(merchant: string): Promise<number> {
    const rec = await this.deps.tokens.current(merchant);
    if (!rec) throw new Error(`no token is known for merchant "${merchant}"`);
    const res = await this.allResources(rec.accessToken);
    await this.updateShops(merchant, res.shopIds);
    return res.shopIds.length;
  }

  async #put(record: TokenRecord): Promise<void> {
    let lastErr: unknown;
    for (let i = 0; i < 5; i++) {
      try {
        await this.deps.store.put(record);
        return;
      } catch (err) {
        lastErr = err;
        await sleep(100 * (i + 1));
      }
    }
    throw lastErr;
  }

  async #underLock(merchant: string, fn: () => Promise<void>): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const outcome = await this.deps.store.withLock(this.deps.upstream, merchant, 15_000, fn);
      if (outcome.acquired) return;
      await sleep(100);
    }
    throw new Error(`a token renewal of merchant "${merchant}" held its lock for too long`);
  }

  /** `lane: 'token'` for the code exchange: its own connections and the upstream's tokenTimeout. */
  #post(path: string, body: string, lane?: 'token') {
    return this.deps.forwarder.send(this.#origin, {
      method: 'POST',
      path: `${this.#basePath}${path}`,
      headers: { 'content-type': 'application/json; charset=utf-8', accept: 'application/json' },
      body,
      timeoutMs: lane === 'token' ? this.deps.cfg.tokenTimeout : this.deps.cfg.timeout,
      ...(lane && { lane }),
    });
  }
}

/** A `{code: non-zero, message}` envelope → a safe description; else undefined. */
function envelopeRefusal(body: Buffer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const { code, message } = parsed as { code?: unknown; message?: unknown };
  if (typeof code !== 'number' || code === 0) return undefined;
  return `Keeta refused the authorization code: code ${code}${typeof message === 'string' ? ` (${message.slice(0, 200)})` : ''}`;
}

function idText(node: JsonNode | undefined): string | undefined {
  if (node?.kind === 'number' && /^\d{1,20}$/.test(node.lexeme)) return node.lexeme;
  if (node?.kind === 'string' && /^\d{1,20}$/.test(node.value)) return node.value;
  return undefined;
}

function textOf(node: JsonNode | undefined): string | undefined {
  return node?.kind === 'string' ? node.value : node?.kind === 'number' ? node.lexeme : undefined;
}


const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
