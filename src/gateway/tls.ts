/**
 * Client TLS as etcd serves it (`--cert-file`, `--key-file`,
 * `--trusted-ca-file`, `--client-cert-auth` on `https://` client URLs):
 * one TLS listener per URL serving gRPC (ALPN `h2`) and the JSON gateway
 * (`http/1.1`), see {@link selectAlpn}; with client-cert-auth a client
 * must present a certificate signed by the trusted CA.
 */
import { readFile } from 'node:fs/promises';
import type * as tls from 'node:tls';
import type * as grpc from '@grpc/grpc-js';

/** The material of the client TLS listeners. */
export interface ClientTls {
  /** PEM certificate chain of the server. */
  readonly cert: Buffer;
  /** PEM private key of `cert`. */
  readonly key: Buffer;
  /** PEM CA bundle client certificates are verified against (etcd's --trusted-ca-file). */
  readonly ca?: Buffer;
  /** etcd's --client-cert-auth: refuse clients without a certificate signed by `ca`. */
  readonly clientCertAuth: boolean;
}

/** The file flags of {@link ClientTls}, as etcd names them. */
export interface ClientTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly trustedCaFile?: string;
  readonly clientCertAuth: boolean;
}

/** A TLS setting that cannot be used. */
export class ClientTlsError extends Error {
  override readonly name = 'ClientTlsError';
  readonly code = 'CLIENT_TLS_INVALID';
}

/** Largest PEM file read (a certificate chain is a few KiB). */
export const PEM_FILE_BYTES_MAX = 1024 * 1024;
/** A TLS handshake that takes longer is cut (a client that connects and sends nothing). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * ALPN: etcd serves gRPC and its JSON gateway over HTTP/2 alike (it routes
 * by content-type); here gRPC is the HTTP/2 side and the gateway the
 * HTTP/1.1 side, so a client offering `http/1.1` (curl, browsers, Node's
 * https) gets it, and one offering only `h2` (every gRPC client: grpc-go,
 * grpc-js) gets `h2`. Undefined (no protocol in common) ends the handshake.
 */
export function selectAlpn(offered: readonly string[]): string | undefined {
  if (offered.includes('http/1.1')) return 'http/1.1';
  return offered.includes('h2') ? 'h2' : undefined;
}

async function readPem(flag: string, path: string): Promise<Buffer> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err: unknown) {
    throw new ClientTlsError(`--${flag} ${path}: ${(err as Error).message}`);
  }
  if (buf.byteLength > PEM_FILE_BYTES_MAX) throw new ClientTlsError(`--${flag} ${path}: larger than ${PEM_FILE_BYTES_MAX} bytes`);
  if (!buf.includes('-----BEGIN ')) throw new ClientTlsError(`--${flag} ${path}: not a PEM file`);
  return buf;
}

/** Reads the files named by the flags; throws ClientTlsError naming the flag. */
export async function loadClientTls(files: ClientTlsFiles): Promise<ClientTls> {
  if (files.clientCertAuth && files.trustedCaFile === undefined) {
    throw new ClientTlsError('--client-cert-auth needs --trusted-ca-file (the CA client certificates are verified against)');
  }
  const cert = await readPem('cert-file', files.certFile);
  const key = await readPem('key-file', files.keyFile);
  const ca = files.trustedCaFile === undefined ? undefined : await readPem('trusted-ca-file', files.trustedCaFile);
  return { cert, key, ...(ca !== undefined ? { ca } : {}), clientCertAuth: files.clientCertAuth };
}

/** Options of the client TLS listeners; throws ClientTlsError when Node refuses the key or certificates. */
export function tlsServerOptions(material: ClientTls): tls.TlsOptions {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca !== undefined ? { ca: material.ca } : {}),
    requestCert: material.clientCertAuth,
    rejectUnauthorized: material.clientCertAuth,
    ALPNCallback: ({ protocols }) => selectAlpn(protocols),
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
  };
}

/**
 * gRPC metadata key under which a call carries its connection's verified
 * client-certificate CN (etcd's AuthInfoFromTLS). Set only by the server
 * ({@link withTlsIdentity}); a value sent by a client is removed first.
 */
export const TLS_COMMON_NAME_METADATA_KEY = 'keyspan-tls-common-name';

/** What {@link withTlsIdentity} needs of a grpc-js server call. */
interface CallWithAuthContext {
  readonly metadata: grpc.Metadata;
  getAuthContext?(): { sslPeerCertificate?: { subject?: { CN?: string | string[] } } };
}

/**
 * A call's metadata with the CN of its verified client certificate under
 * {@link TLS_COMMON_NAME_METADATA_KEY} (removed when there is none). Only a
 * connection with --client-cert-auth has a verified certificate; the JSON
 * gateway never sets it (etcd's gateway does not support CN auth either).
 */
export function withTlsIdentity(call: CallWithAuthContext): grpc.Metadata {
  const md = call.metadata;
  md.remove(TLS_COMMON_NAME_METADATA_KEY);
  const cn = call.getAuthContext?.().sslPeerCertificate?.subject?.CN;
  const value = Array.isArray(cn) ? cn[0] : cn;
  if (value !== undefined && value !== '') md.set(TLS_COMMON_NAME_METADATA_KEY, value);
  return md;
}
