import { readFileSync } from 'node:fs';
import { connect, type PeerCertificate } from 'node:tls';
import { Agent, request } from 'undici';

/** An HTTPS client of the gateway's listeners: trusts `ca`, shows a client certificate when given. */
export function tlsAgent(opts: { ca: string; cert?: string; key?: string }): Agent {
  return new Agent({
    connect: {
      ca: readFileSync(opts.ca),
      ...(opts.cert && { cert: readFileSync(opts.cert) }),
      ...(opts.key && { key: readFileSync(opts.key) }),
    },
  });
}

export interface Answer {
  status: number;
  text: string;
  json: any;
}

/** POST a JSON body through an agent; rejects when no connection could be had. */
export async function tlsPost(agent: Agent, url: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(url, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, text, json };
}

/** The certificate a listener serves to a new connection now. */
export function servedCertificate(url: string, ca: string): Promise<PeerCertificate> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port), ca: readFileSync(ca), servername: 'localhost' }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}
