/**
 * Test certificates made with the `openssl` command at test time: a CA, a
 * server certificate for 127.0.0.1 and a client certificate signed by it,
 * and a client certificate from another CA. EC P-256 keys (fast to make).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const OPENSSL = process.env['OPENSSL'] ?? 'openssl';
const probe = spawnSync(OPENSSL, ['version'], { encoding: 'utf8' });
/** A skip message where openssl is missing, else false. */
export const skipWithoutOpenssl: string | false =
  probe.error !== undefined || probe.status !== 0 ? `openssl not installed (set OPENSSL): ${String(probe.error ?? probe.stderr)}` : false;

/** Paths of the generated PEM files. */
export interface TestCerts {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Client certificate with CN `clientCommonName`, signed by the CA. */
  readonly clientCert: string;
  readonly clientKey: string;
  /** Client certificate signed by another CA. */
  readonly strangerCert: string;
  readonly strangerKey: string;
}

/** CN of the trusted client certificate. */
export const CLIENT_COMMON_NAME = 'alice';
const DAYS = '2';
const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: readonly string[]): void {
  execFileSync(OPENSSL, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
}

async function signed(dir: string, name: string, subject: string, ca: string, ext: string): Promise<void> {
  const extFile = join(dir, `${name}.ext`);
  await writeFile(extFile, ext);
  openssl(['req', ...KEY_ARGS, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', subject]);
  openssl([
    'x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, `${ca}.crt`), '-CAkey', join(dir, `${ca}.key`),
    '-set_serial', String(Math.floor(Math.random() * 1e9)), '-days', DAYS, '-out', join(dir, `${name}.crt`), '-extfile', extFile,
  ]);
}

/** Makes the certificates in a new temp directory. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'keyspan-tls-'));
  for (const ca of ['ca', 'otherca']) {
    openssl(['req', '-x509', ...KEY_ARGS, '-keyout', join(dir, `${ca}.key`), '-out', join(dir, `${ca}.crt`), '-days', DAYS, '-subj', `/CN=keyspan test ${ca}`]);
  }
  await signed(dir, 'server', '/CN=keyspan-server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await signed(dir, 'client', `/CN=${CLIENT_COMMON_NAME}`, 'ca', 'extendedKeyUsage=clientAuth\n');
  await signed(dir, 'stranger', '/CN=stranger', 'otherca', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    strangerCert: join(dir, 'stranger.crt'),
    strangerKey: join(dir, 'stranger.key'),
  };
}
