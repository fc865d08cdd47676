/**
 * The small HTML pages the merchant's browser sees after authorizing. Everything that comes from
 * outside (brand names) is HTML-escaped; no token, code or state is ever put on a page.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The pages' only style, allowed by hash in their Content-Security-Policy (edge/page-headers.ts). */
export const PAGE_STYLE = 'body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;line-height:1.5}';

function page(title: string, heading: string, lines: string[]): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer">
<title>Countersign: ${escapeHtml(title)}</title>
<style>${PAGE_STYLE}</style></head>
<body>
<h1>${escapeHtml(heading)}</h1>
${lines.map((l) => `<p>${l}</p>`).join('\n')}
</body>
</html>
`;
}

export function connectedPage(brandName: string, shopCount: number, again: boolean): string {
  const shops = `${shopCount} shop${shopCount === 1 ? '' : 's'}`;
  return page('connected', again ? 'Already connected' : 'Connected', [
    `<strong id="brand">${escapeHtml(brandName)}</strong> is connected with <span id="shops">${shops}</span>.`,
    'You can close this page.',
  ]);
}

export function notConnectedPage(reason: string): string {
  return page('not connected', 'Not connected', [`<span id="reason">${escapeHtml(reason)}</span>`, 'Ask for a new authorization link and try again.']);
}
