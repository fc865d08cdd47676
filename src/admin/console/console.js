// Countersign console: talks to the admin API of the listener that served it, with the admin
// token the operator enters once (kept in this tab's sessionStorage, sent as a Bearer header).
// Everything shown is built with textContent: nothing from the API is parsed as HTML.
'use strict';

(() => {
  const TOKEN_KEY = 'countersign.adminToken';
  const POLL_MS = 10_000;
  const CONNECT_POLL_MS = 2_000;
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let timer = 0;
  /** While a connect link is out: the upstream and the merchants it had then. */
  let connecting = null;
  let lastTokens = null;

  class Unauthorized extends Error {}

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body, credentials: 'omit', cache: 'no-store' });
    if (res.status === 401) throw new Unauthorized('the admin token was refused');
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) throw new Error((json && json.error && json.error.message) || `the admin API answered ${res.status}`);
    return json;
  }

  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  };

  function relative(iso) {
    if (!iso) return '';
    const ms = Date.parse(iso) - Date.now();
    const abs = Math.abs(ms);
    const d = Math.floor(abs / 86_400_000);
    const h = Math.floor((abs % 86_400_000) / 3_600_000);
    const m = Math.floor((abs % 3_600_000) / 60_000);
    const span = d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : `${m} min`;
    return ms >= 0 ? `in ${span}` : `${span} ago`;
  }
  const short = (iso) => iso.replace('T', ' ').replace(/:\d\d\.\d+Z$/, 'Z');
  const when = (iso) => (iso ? `${short(iso)} (${relative(iso)})` : '—');
  /** A table cell's time: the UTC time, and how far away it is below it. */
  const timeCell = (field, iso) =>
    el('td', { 'data-field': field, 'data-value': iso || '' }, iso ? short(iso) : '—', iso ? el('div', { class: 'muted', text: relative(iso) }) : null);

  function notice(text, bad = false) {
    const n = $('notice');
    n.replaceChildren(...(Array.isArray(text) ? text : [text]));
    n.className = bad ? 'notice bad' : 'notice';
    n.hidden = false;
  }

  function showLogin(message) {
    clearTimeout(timer);
    $('app').hidden = true;
    $('upstreams').replaceChildren();
    $('logout').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('token').focus();
  }

  function logout() {
    sessionStorage.removeItem(TOKEN_KEY);
    token = '';
    connecting = null;
    showLogin('');
  }

  async function load() {
    clearTimeout(timer);
    try {
      const [tokens, activity] = await Promise.all([api('GET', '/admin/tokens'), api('GET', '/admin/activity')]);
      lastTokens = tokens;
      $('login').hidden = true;
      $('app').hidden = false;
      $('logout').hidden = !token;
      render(tokens);
      renderActivity(activity);
      checkConnected(tokens);
      $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (err instanceof Unauthorized) {
        const had = token !== '';
        sessionStorage.removeItem(TOKEN_KEY);
        token = '';
        showLogin(had ? 'The gateway refused this admin token.' : '');
        return;
      }
      notice(`Cannot load the admin API: ${err.message}`, true);
    }
    timer = setTimeout(load, connecting ? CONNECT_POLL_MS : POLL_MS);
  }

  const merchantName = (m) => (m.merchant === null || m.merchant === undefined ? '(upstream token)' : m.merchant);

  function render(data) {
    const all = [];
    for (const u of data.upstreams) for (const m of u.merchants) all.push({ u, m });
    const attention = all.filter(({ m }) => m.state !== 'valid');
    const dated = all.filter(({ m }) => m.expiresAt).sort((a, b) => Date.parse(a.m.expiresAt) - Date.parse(b.m.expiresAt));
    const soonest = dated[0];
    $('soonest').textContent = soonest ? `${merchantName(soonest.m)} (${soonest.u.name}) ${relative(soonest.m.expiresAt)}` : '—';
    $('attention-count').textContent = String(attention.length);
    $('merchant-count').textContent = String(all.length);
    $('attention').hidden = attention.length === 0;
    $('attention-list').replaceChildren(
      ...attention.map(({ u, m }) =>
        el('li', {}, el('span', { class: `state ${m.state}`, text: m.state }), ` ${u.name} / ${merchantName(m)}`, m.lastRefreshError ? el('span', { class: 'muted', text: ` — ${m.lastRefreshError.message}` }) : null),
      ),
    );
    $('upstreams').replaceChildren(...data.upstreams.map(renderUpstream));
  }

  function renderUpstream(u) {
    const head = el('div', { class: 'head' }, el('h2', { text: u.name }), el('span', { class: 'muted', text: u.type }), el('span', { class: 'spacer' }));
    const linkArea = el('div', { class: 'link', 'data-link-for': u.name, hidden: '' });
    if (u.type === 'keeta') head.append(el('button', { class: 'primary', type: 'button', 'data-action': 'connect', text: 'Connect a merchant', onclick: () => connect(u.name, linkArea) }));
    if (connecting && connecting.upstream === u.name && connecting.view) {
      linkArea.replaceChildren(...connecting.view);
      linkArea.hidden = false;
    }
    const rows = u.merchants.map((m) => {
      const name = merchantName(m);
      const outcome = m.lastRefreshError
        ? el('div', {}, el('span', { class: 'error', text: `failed ${m.lastRefreshError.failures}× (${relative(m.lastRefreshError.at)})` }), el('div', { class: 'muted small', text: m.lastRefreshError.message }))
        : el('span', { class: 'muted', text: m.refreshedAt ? 'ok' : '' });
      const actions = el('td', { class: 'actions' });
      const refreshPath = m.merchant === null || m.merchant === undefined ? `/admin/upstreams/${encodeURIComponent(u.name)}/refresh` : `/admin/upstreams/${encodeURIComponent(u.name)}/merchants/${encodeURIComponent(m.merchant)}/refresh`;
      actions.append(el('button', { type: 'button', 'data-action': 'refresh', text: 'Refresh', title: 'Renew the token now', onclick: (e) => refresh(e.target, u.name, name, refreshPath) }));
      if (u.type === 'keeta' && m.merchant) {
        actions.append(el('button', { type: 'button', 'data-action': 'shops', text: 'Shops…', title: 'Replace the shops', onclick: () => replaceShops(u.name, m.merchant) }));
        actions.append(el('button', { type: 'button', class: 'danger', 'data-action': 'forget', text: 'Forget…', onclick: () => forget(u.name, m.merchant) }));
      }
      return el(
        'tr',
        { 'data-merchant': name, 'data-upstream': u.name },
        el('td', {}, el('code', { text: name })),
        el('td', {}, el('span', { class: `state ${m.state}`, 'data-field': 'state', text: m.state })),
        timeCell('expires', m.expiresAt),
        timeCell('refreshed', m.refreshedAt),
        el('td', { class: 'outcome' }, outcome),
        el('td', { 'data-field': 'shops', text: m.shopCount === undefined ? '' : String(m.shopCount) }),
        el('td', { 'data-field': 'encryption', text: m.encryption || '—' }),
        actions,
      );
    });
    const table = el(
      'table',
      {},
      el('thead', {}, el('tr', {}, ...['Merchant', 'State', 'Expires', 'Last refresh', 'Outcome', 'Shops', 'Encryption', ''].map((h) => el('th', { text: h })))),
      el('tbody', {}, ...(rows.length ? rows : [el('tr', {}, el('td', { colspan: '8', class: 'muted', text: 'No merchant yet.' }))])),
    );
    return el('section', { class: 'upstream', 'data-upstream': u.name }, head, linkArea, table);
  }

  function renderActivity(a) {
    $('activity-since').textContent = `Requests other than success since ${short(a.since)}; rejected = refused by the gateway itself.`;
    const rows = [];
    for (const u of a.upstreams) for (const [cls, n] of Object.entries(u.classes)) rows.push({ u: u.name, cls, n });
    rows.sort((x, y) => y.n - x.n);
    $('activity').tBodies[0].replaceChildren(
      ...(rows.length
        ? rows.map((r) => el('tr', { 'data-class': r.cls }, el('td', { text: r.u }), el('td', { text: r.cls }), el('td', { text: String(r.n) })))
        : [el('tr', {}, el('td', { colspan: '3', class: 'muted', text: 'None.' }))]),
    );
  }

  async function act(fn) {
    try {
      await fn();
    } catch (err) {
      if (err instanceof Unauthorized) return logout();
      notice(err.message, true);
    }
  }

  function refresh(button, upstream, name, path) {
    button.disabled = true;
    return act(async () => {
      const r = await api('POST', path);
      await load();
      notice(`Renewed ${upstream} / ${name}: the new token expires ${when(r.expiresAt)}.`);
    }).finally(() => (button.disabled = false));
  }

  function connect(upstream, area) {
    return act(async () => {
      const link = await api('POST', `/admin/upstreams/${encodeURIComponent(upstream)}/authorizations`);
      const u = lastTokens && lastTokens.upstreams.find((x) => x.name === upstream);
      const view = [
        el('div', { text: `Send this link to the merchant (valid until ${when(link.expiresAt)}). It appears below once it has authorized.` }),
        el('a', { href: link.url, target: '_blank', rel: 'noopener noreferrer', 'data-role': 'authorization-link', text: link.url }),
      ];
      connecting = { upstream, before: new Set(u ? u.merchants.map((m) => m.merchant) : []), view };
      area.replaceChildren(...view);
      area.hidden = false;
      clearTimeout(timer);
      timer = setTimeout(load, CONNECT_POLL_MS);
    });
  }

  function checkConnected(data) {
    if (!connecting) return;
    const u = data.upstreams.find((x) => x.name === connecting.upstream);
    const added = u ? u.merchants.filter((m) => !connecting.before.has(m.merchant)) : [];
    if (added.length === 0) return;
    notice(`Connected: ${added.map((m) => `${connecting.upstream} / ${m.merchant}`).join(', ')}.`);
    connecting = null;
    render(data);
  }

  /** Opens a dialog and resolves with the button pressed ("ok" or "cancel"). */
  function ask(dialog) {
    return new Promise((resolve) => {
      const onClick = (e) => {
        const answer = e.target.getAttribute && e.target.getAttribute('data-answer');
        if (!answer) return;
        dialog.removeEventListener('click', onClick);
        dialog.close(answer);
      };
      dialog.addEventListener('click', onClick);
      dialog.addEventListener('close', () => resolve(dialog.returnValue || 'cancel'), { once: true });
      dialog.returnValue = '';
      dialog.showModal();
    });
  }

  async function forget(upstream, merchant) {
    $('confirm-text').textContent = `Forget ${merchant} of ${upstream}? Its token pair is deleted: the merchant must be connected (or its pair imported) again.`;
    if ((await ask($('confirm'))) !== 'ok') return;
    await act(async () => {
      await api('DELETE', `/admin/upstreams/${encodeURIComponent(upstream)}/merchants/${encodeURIComponent(merchant)}`);
      await load();
      notice(`Forgot ${upstream} / ${merchant}.`);
    });
  }

  async function replaceShops(upstream, merchant) {
    $('shops-title').textContent = `Replace the shops of ${merchant} (${upstream})`;
    $('shops-input').value = '';
    if ((await ask($('shops'))) !== 'ok') return;
    const ids = $('shops-input').value.split(/[\s,]+/).filter((s) => s !== '');
    const bad = ids.find((s) => !/^\d{1,20}$/.test(s));
    if (bad !== undefined) return notice(`Not a shop id: ${bad}`, true);
    await act(async () => {
      // Shop ids are int64: sent as JSON numbers written from their digits, never through a double.
      await api('PUT', `/admin/upstreams/${encodeURIComponent(upstream)}/merchants/${encodeURIComponent(merchant)}/shops`, `{"shopIds":[${ids.join(',')}]}`);
      await load();
      notice(`Replaced the shops of ${upstream} / ${merchant}: ${ids.length} shop(s).`);
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      token = $('token').value.trim();
      $('token').value = '';
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      void load();
    });
    $('logout').addEventListener('click', logout);
    void load();
  });
})();
