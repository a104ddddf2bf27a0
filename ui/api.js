// api.js — the console talks to pemnd's REST API only (docs/API.md), same origin. The token
// lives in sessionStorage (this tab, until it closes) and travels as an Authorization
// header: never a cookie, never in a URL.

const KEY = 'pemn.token';

export function token() {
  try { return sessionStorage.getItem(KEY) || ''; } catch (e) { return ''; }
}

export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY);
  } catch (e) { /* storage disabled: the token lasts until the page reloads */ }
  memo.clear();
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  describe() {
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

// GET answers remembered with their ETag: a poll sends If-None-Match and a 304 reuses them.
const memo = new Map();

function headers(extra) {
  const hd = Object.assign({Accept: 'application/json'}, extra || {});
  const t = token();
  if (t) hd.Authorization = 'Bearer ' + t;
  return hd;
}

async function failure(resp) {
  let code = 'http_' + resp.status, message = resp.statusText || 'request failed';
  try {
    const j = await resp.json();
    if (j && j.error) { code = String(j.error.code); message = String(j.error.message); }
  } catch (e) { /* not JSON */ }
  return new ApiError(resp.status, code, message);
}

// get(path) -> {data, changed}: changed is false when the server said 304.
export async function get(path) {
  const m = memo.get(path);
  const resp = await fetch(path, {
    headers: headers(m ? {'If-None-Match': m.etag} : null),
    cache: 'no-store',
    credentials: 'omit',
  });
  if (resp.status === 304 && m) return {data: m.data, changed: false};
  if (!resp.ok) throw await failure(resp);
  const data = await resp.json();
  const etag = resp.headers.get('ETag');
  if (etag) memo.set(path, {etag, data});
  if (memo.size > 200) memo.delete(memo.keys().next().value);
  return {data, changed: true};
}

export async function getJSON(path) {
  return (await get(path)).data;
}

export async function send(method, path, body) {
  const resp = await fetch(path, {
    method,
    headers: headers(body === undefined ? null : {'Content-Type': 'application/json'}),
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  if (!resp.ok) throw await failure(resp);
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

// Path segments are names the server validated; encode them anyway.
export function path(...parts) {
  return '/v1/' + parts.map((p) => encodeURIComponent(p)).join('/');
}
