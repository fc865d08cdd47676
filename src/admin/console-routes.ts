import { readFileSync } from 'node:fs';
import type Router from '@koa/router';

/**
 * GET /console: the operators' page, plain files shipped beside this module (src/admin/console/,
 * copied to dist/admin/console/ by the build). The page holds no data, token or secret: its
 * script asks for the admin token once (kept in sessionStorage) and calls /admin/* with it.
 */
const asset = (name: string) => readFileSync(new URL(`./console/${name}`, import.meta.url));

/** Script only from this origin (no inline script), no framing, no sniffing, no referrer. */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export function addConsoleRoutes(router: Router): void {
  const files = {
    '/console': { body: asset('index.html'), type: 'text/html; charset=utf-8' },
    '/console/console.js': { body: asset('console.js'), type: 'text/javascript; charset=utf-8' },
    '/console/console.css': { body: asset('console.css'), type: 'text/css; charset=utf-8' },
    '/console/icon.svg': { body: asset('icon.svg'), type: 'image/svg+xml' },
  };
  for (const [path, file] of Object.entries(files)) {
    router.get(path, (ctx) => {
      ctx.set(CONSOLE_HEADERS);
      ctx.type = file.type;
      ctx.body = file.body;
    });
  }
}
