import { readFileSync } from 'node:fs';
import type Router from '@koa/router';
import { pageSecurityHeaders } from '../edge/page-headers.js';

/**
 * GET /console: the operators' page, plain files shipped beside this module (src/admin/console/,
 * copied to dist/admin/console/ by the build). The page holds no data, token or secret: its
 * script asks for the admin token once (kept in sessionStorage) and calls /admin/* with it.
 */
const asset = (name: string) => readFileSync(new URL(`./console/${name}`, import.meta.url));

/**
 * The security headers every page of the gateway carries (edge/page-headers.ts), for a page
 * whose script, style and icon are files of its own origin and whose script calls /admin/*;
 * never cached, never embedded by another origin.
 */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  ...pageSecurityHeaders({ selfAssets: true, connectSelf: true }),
  'Cache-Control': 'no-store',
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
