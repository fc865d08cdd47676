import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Test certificates made at test time with the `openssl` command (Debian package `openssl`,
 * installed by .ci/run): a CA, server certificates for 127.0.0.1/localhost, client
 * certificates with a URI SAN, and a second CA that signs certificates the gateway must refuse.
 * Everything lives in one temporary folder, removed by `remove()`.
 */
export interface Issued {
  cert: string;
  key: string;
  /** Contents, PEM. */
  certPem: string;
  keyPem: string;
}

export interface TestPki {
  dir: string;
  ca: Issued;
  /** Another CA: what it signs is trusted by nobody here. */
  otherCa: Issued;
  /** A server certificate for 127.0.0.1 and localhost, signed by `ca`. */
  server: Issued;
  /** Sign a new certificate with `ca` (or `otherCa`). */
  issue(name: string, opts: { cn: string; san?: string[]; client?: boolean; by?: 'ca' | 'otherCa'; days?: number }): Issued;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr || (err as Error).message}`);
  }
}

function issued(dir: string, name: string): Issued {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

function makeCa(dir: string, name: string, cn: string): Issued {
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  return issued(dir, name);
}

export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'cs-pki-'));
  const ca = makeCa(dir, 'ca', 'Countersign Test CA');
  const otherCa = makeCa(dir, 'other-ca', 'Some Other CA');
  let serial = 1;
  const issue: TestPki['issue'] = (name, opts) => {
    const signer = opts.by === 'otherCa' ? 'other-ca' : 'ca';
    const ext = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth'}`,
      ...(opts.san && opts.san.length > 0 ? [`subjectAltName=${opts.san.join(',')}`] : []),
    ];
    writeFileSync(join(dir, `${name}.ext`), `${ext.join('\n')}\n`);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${opts.cn}`], dir);
    openssl(
      ['x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.crt`, '-CAkey', `${signer}.key`, '-set_serial', String(1000 + serial++), '-days', String(opts.days ?? 2), '-out', `${name}.crt`, '-extfile', `${name}.ext`],
      dir,
    );
    return issued(dir, name);
  };
  const server = issue('server', { cn: 'countersign.test', san: ['DNS:localhost', 'IP:127.0.0.1'] });
  return { dir, ca, otherCa, server, issue, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
