/**
 * The Node ceiling: a pass-through that does no work at all. node:http receives the request,
 * undici's Pool forwards the body and the whole answer comes back, as Countersign does, minus
 * everything Countersign adds (Koa, checks, signing, metrics, access log).
 *
 *   node --import tsx bench/bare-proxy.ts <listen-port> <upstream-origin>
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [port, origin] = [Number(process.argv[2] ?? 0), process.argv[3] ?? 'http://127.0.0.1:8080'];
const pool = new Pool(origin, { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 });

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    pool
      .request({ method: req.method as 'POST', path: req.url ?? '/', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) })
      .then(async (up) => {
        const body = Buffer.from(await up.body.arrayBuffer());
        res.writeHead(up.statusCode, { 'content-type': 'application/json', 'content-length': body.length });
        res.end(body);
      })
      .catch(() => {
        res.writeHead(502).end();
      });
  });
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`));
