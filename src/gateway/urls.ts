/**
 * etcd-style URL flags (`--listen-client-urls http://127.0.0.1:2379,...`):
 * a comma-separated list of `http://host:port` URLs; client URLs may be
 * `https://` (served with TLS, see tls.ts). Unix sockets are not served yet
 * and are refused with a clear message.
 */

/** One parsed listen or advertise URL. */
export interface ListenUrl {
  /** As given (normalized: no trailing slash). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** An `https://` URL (TLS). */
  readonly secure?: boolean;
}

/** Most URLs one flag may list. */
export const URLS_PER_FLAG_MAX = 16;

/** A URL flag that cannot be used. */
export class UrlFlagError extends Error {
  override readonly name = 'UrlFlagError';
  readonly code = 'URL_FLAG_INVALID';
}

/** Parses a comma-separated URL list as etcd's flags take it. */
export function parseUrlList(flag: string, value: string, options: { allowTls?: boolean } = {}): ListenUrl[] {
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0) throw new UrlFlagError(`--${flag}: no URL given`);
  if (parts.length > URLS_PER_FLAG_MAX) throw new UrlFlagError(`--${flag}: more than ${URLS_PER_FLAG_MAX} URLs`);
  return parts.map((p) => parseUrl(flag, p, options.allowTls === true));
}

function parseUrl(flag: string, text: string, allowTls: boolean): ListenUrl {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UrlFlagError(`--${flag}: '${text}' is not a URL (expected http://host:port)`);
  }
  const secure = u.protocol === 'https:';
  if ((secure && !allowTls) || u.protocol === 'unixs:') {
    throw new UrlFlagError(`--${flag}: '${text}': TLS is not supported here; use http://`);
  }
  if (u.protocol !== 'http:' && !secure) throw new UrlFlagError(`--${flag}: '${text}': scheme must be ${allowTls ? 'http or https' : 'http'}`);
  if (u.port === '') throw new UrlFlagError(`--${flag}: '${text}': a port is required`);
  if (u.pathname !== '/' && u.pathname !== '') throw new UrlFlagError(`--${flag}: '${text}': a URL must not have a path`);
  // URL keeps IPv6 hosts bracketed; listen() wants them bare.
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { url: `${u.protocol}//${u.host}`, host, port: Number(u.port), ...(secure ? { secure } : {}) };
}

/** `host:port` for a listener (IPv6 hosts bracketed, as gRPC and net expect in addresses). */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
