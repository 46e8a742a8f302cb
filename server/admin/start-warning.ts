/**
 * The warning the server logs at start when its admin is open to whoever a local reverse
 * proxy lets in: the admin is on the public listener, without --admin-token, and
 * --forwarded-allow-ips trusts a proxy (the default trusts one on this machine). A proxy
 * that adds no forwarding header — nginx's plain `proxy_pass` adds none — makes every
 * client a loopback client without forwarding headers, which access.ts must let in; no
 * check of the request can tell. Only the operator can: with --admin-bind or a token.
 */
import type { ServerConfig } from '../config.ts';

export function adminExposureWarning(config: Pick<ServerConfig, 'adminBind' | 'adminToken' | 'forwardedAllowIps' | 'adminPath'>): string | undefined {
  if (config.adminBind !== undefined || config.adminToken !== undefined || config.forwardedAllowIps.length === 0) return undefined;
  return `the admin dashboard (${config.adminPath}), its metrics and its reload/recycle actions answer loopback clients on the public listener, `
    + 'and behind a reverse proxy on this machine every client looks local (nginx\'s plain proxy_pass sends no forwarding header): '
    + 'behind a proxy, serve the admin on its own port with --admin-bind 127.0.0.1:9100, or set INTERPOOL_ADMIN_TOKEN '
    + '(see docs/admin.md); with no proxy in front, --forwarded-allow-ips "" silences this';
}
