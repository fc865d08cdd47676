import { BlockList, isIP } from 'node:net';
import { parseIpOrCidr } from '../config/ingress-schema.js';

/**
 * Where Keeta's webhooks come from (docs/protocols.md 1.9, "IP Whitelist Configuration"),
 * used when `webhooks.sourceIps` is `documented`.
 */
export const KEETA_DOCUMENTED_SOURCE_IPS: readonly string[] = [
  '43.135.86.188', '43.135.94.192', '101.32.221.146', '43.128.27.185', '101.32.216.180', '119.28.140.253',
  '162.62.123.227', '162.62.219.133', '162.62.55.69', '162.62.61.26', '43.131.16.79', '43.131.30.39',
  '43.131.52.67', '43.131.55.51', '43.157.1.126', '43.157.104.104', '43.157.33.44', '43.157.64.52',
  '43.158.90.31', '43.158.90.65', '49.51.164.88', '49.51.172.32',
];

export function blockListOf(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const e of entries) {
    const p = parseIpOrCidr(e);
    if (!p) throw new TypeError(`not an IP or CIDR: ${e}`);
    list.addSubnet(p.address, p.prefix, p.family);
  }
  return list;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; brackets and zone ids removed. */
export function normalizeIp(ip: string): string {
  const bare = ip.trim().replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  return mapped ? mapped[1]! : bare;
}

export function listed(list: BlockList, ip: string): boolean {
  const v = isIP(ip);
  return v !== 0 && list.check(ip, v === 4 ? 'ipv4' : 'ipv6');
}

export interface SourceCheck {
  /** The client address: the socket peer, or, when the peer is a trusted proxy, the nearest untrusted X-Forwarded-For hop. */
  clientIp(peer: string, forwardedFor: string | undefined): string;
  allowed(ip: string): boolean;
}

export function createSourceCheck(sourceIps: 'documented' | 'any' | readonly string[], trustedProxies: readonly string[]): SourceCheck {
  const trusted = blockListOf(trustedProxies);
  const allow = sourceIps === 'any' ? undefined : blockListOf(sourceIps === 'documented' ? KEETA_DOCUMENTED_SOURCE_IPS : sourceIps);
  return {
    clientIp(peer, forwardedFor) {
      let ip = normalizeIp(peer);
      if (!forwardedFor || !listed(trusted, ip)) return ip;
      const hops = forwardedFor.split(',').map(normalizeIp).filter((h) => h !== '');
      for (let i = hops.length - 1; i >= 0; i--) {
        ip = hops[i]!;
        if (isIP(ip) === 0) return ip; // garbage in the header: never matches an allow list
        if (!listed(trusted, ip)) return ip;
      }
      return ip;
    },
    allowed(ip) {
      return allow === undefined || listed(allow, ip);
    },
  };
}
