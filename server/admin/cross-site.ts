/**
 * Admin actions (reload, recycle) change the server, and loopback access and the
 * sign-in cookie are ambient credentials a browser sends by itself: so an action is
 * refused unless the request shows it was not sent cross-site.
 *
 * - It must carry `X-Interpool-Admin: 1`. An HTML form cannot set a header, and a
 *   cross-origin fetch that sets one needs a CORS preflight, which the admin never
 *   approves (it sends no Access-Control-* headers).
 * - `Sec-Fetch-Site`, when the browser sends it, must be `same-origin` (or `none`: typed
 *   by the user, or not from a browser).
 * - `Origin`, when present, must be this server's own origin (scheme and Host).
 *
 * The sign-in form is a plain HTML form (no custom header): it is checked with the last
 * two rules only. The cookie is also SameSite=Strict.
 */
export const ACTION_HEADER = 'x-interpool-admin';

export interface OriginFacts {
  actionHeader: string | undefined;
  secFetchSite: string | undefined;
  origin: string | undefined;
  host: string | undefined;
  scheme: 'http' | 'https';
}

/** Why the request may be cross-site, or undefined when it is not. */
export function crossSiteReason(facts: OriginFacts, options: { requireHeader: boolean }): string | undefined {
  if (options.requireHeader && facts.actionHeader !== '1') return `the ${ACTION_HEADER}: 1 header is missing`;
  if (facts.secFetchSite !== undefined && facts.secFetchSite !== 'same-origin' && facts.secFetchSite !== 'none') {
    return `Sec-Fetch-Site is ${facts.secFetchSite}`;
  }
  if (facts.origin !== undefined) {
    const expected = facts.host === undefined ? undefined : `${facts.scheme}://${facts.host}`.toLowerCase();
    if (facts.origin.toLowerCase() !== expected) return `Origin ${facts.origin} is not this server`;
  }
  return undefined;
}
