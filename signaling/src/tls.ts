import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { createLogger, type Config } from '@cctv/core';

const log = createLogger('signaling:tls');

/** The certificate and key the HTTPS server uses, and the certificate's SHA-256 fingerprint. */
export interface TlsMaterial {
  cert: string;
  key: string;
  /** SHA-256 fingerprint, colon-separated hex (what browsers show). */
  fingerprint: string;
  /** True when it was made just now (first start, or the old one expired). */
  generated: boolean;
}

const VALID_DAYS = 825;

/**
 * For `self-signed`: the certificate in dataDir/tls, made on first start (ECDSA P-256, names: localhost,
 * this host's name and addresses) and again when it nears its end. For `files`: the given PEM files.
 */
export async function loadTls(cfg: Config['http']['tls'], dataDir: string): Promise<TlsMaterial | null> {
  if (cfg.mode === 'off') return null;
  if (cfg.mode === 'files') {
    let cert: string;
    let key: string;
    try {
      cert = readFileSync(cfg.certFile!, 'utf8');
      key = readFileSync(cfg.keyFile!, 'utf8');
    } catch (error) {
      throw new Error(`cannot read the TLS certificate or key ('http.tls.certFile', 'http.tls.keyFile'): ${(error as Error).message}`, { cause: error });
    }
    return { cert, key, fingerprint: fingerprint(cert), generated: false };
  }
  const dir = join(dataDir, 'tls');
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) {
    const cert = readFileSync(certPath, 'utf8');
    const validTo = new Date(new X509Certificate(cert).validTo).getTime();
    if (validTo - Date.now() > 30 * 86_400_000) return { cert, key: readFileSync(keyPath, 'utf8'), fingerprint: fingerprint(cert), generated: false };
    log.info('the self-signed certificate is about to expire; making a new one');
  }
  const { cert, key } = await selfSigned();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(keyPath, key, { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  writeFileSync(certPath, cert);
  return { cert, key, fingerprint: fingerprint(cert), generated: true };
}

async function selfSigned(): Promise<{ cert: string; key: string }> {
  x509.cryptoProvider.set(webcrypto as never);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const ips = ['127.0.0.1', '::1', ...Object.values(networkInterfaces()).flatMap((l) => l ?? []).filter((a) => !a.internal).map((a) => a.address)];
  const names = [...new Set(['localhost', hostname()])];
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${hostname().replace(/[,=+<>#;"\\]/g, '')} (cctv self-signed)`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + VALID_DAYS * 86_400_000),
    signingAlgorithm: alg,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([...names.map((value) => ({ type: 'dns' as const, value })), ...ips.map((value) => ({ type: 'ip' as const, value }))]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', (keys as webcrypto.CryptoKeyPair).privateKey);
  const key = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8).toString('base64').replace(/(.{64})/g, '$1\n').trim()}\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString('pem') + '\n', key };
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}
