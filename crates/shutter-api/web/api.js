// The API client: one fetch wrapper for every /v1 call, and the session (tokens, refresh).
//
// Where the tokens live (see README.md in this folder): the access token only in memory; the
// refresh token in localStorage, so a reload or a new tab stays signed in. Refreshes are
// serialised across tabs with the Web Locks API and always use the newest refresh token in
// storage, because presenting a rotated token revokes the whole session (SPEC 2).

const REFRESH_KEY = 'shutter.refresh_token';
const REFRESH_LOCK = 'shutter-refresh';
// Refresh this long before the access token expires.
const REFRESH_MARGIN_MS = 60_000;

/** An API failure: the problem's `code`, `detail`, field `errors`, `limit`, and `retryAfter` (s). */
export class ApiError extends Error {
  constructor({ status = 0, code = 'network', title, detail, errors, limit, retryAfter } = {}) {
    super(detail || title || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = detail;
    this.errors = errors || [];
    this.limit = limit || null;
    this.retryAfter = retryAfter ?? null;
  }
}

/** Builds an ApiError from a response status, its body text and its Retry-After header. */
export function problemFrom(status, bodyText, retryAfterHeader) {
  let p = {};
  try {
    p = bodyText ? JSON.parse(bodyText) : {};
  } catch {
    p = {};
  }
  const retry = retryAfterHeader != null && retryAfterHeader !== '' ? Number(retryAfterHeader) : null;
  return new ApiError({
    status,
    code: p.code || (status === 460 ? 'checksum_mismatch' : `http_${status}`),
    title: p.title,
    detail: p.detail,
    errors: p.errors,
    limit: p.limit,
    retryAfter: Number.isFinite(retry) ? retry : null,
  });
}

// ---- session state ----------------------------------------------------------------------

const session = {
  accessToken: null,
  expiresAt: 0, // ms since epoch
  user: null,
  timer: null,
};
const listeners = new Set();

/** The signed-in user (User), or null. */
export const currentUser = () => session.user;
/** The current access token (memory only), or null. */
export const accessToken = () => session.accessToken;

/** Calls `fn(user|null)` whenever the session starts, changes user data, or ends. */
export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
function notify() {
  for (const fn of listeners) {
    try {
      fn(session.user);
    } catch (e) {
      console.error(e);
    }
  }
}

/**
 * Calls `fn()` when the signed-in user's session ends: sign-out, account deletion, a refused
 * refresh, a sign-out in another tab (or another user signs in). Whatever the page keeps for
 * that user (uploads, caches) must go then, so nothing of it carries over to the next one.
 */
export function onSessionEnd(fn) {
  let id = session.user ? session.user.id : null;
  return onSessionChange((user) => {
    const now = user ? user.id : null;
    const ended = id !== null && now !== id;
    id = now;
    if (ended) fn();
  });
}

const signOutHooks = new Set();
/**
 * Calls `fn()` (awaited, for at most a few seconds) when the user signs out with the button,
 * before the session is revoked: the access token still works, so unfinished uploads can be
 * removed from the server. `onSessionEnd` runs after it, as for any other end.
 */
export function beforeSignOut(fn) {
  signOutHooks.add(fn);
  return () => signOutHooks.delete(fn);
}

export function setCurrentUser(user) {
  session.user = user;
  notify();
}

function storedRefreshToken() {
  try {
    return localStorage.getItem(REFRESH_KEY);
  } catch {
    return null;
  }
}
function storeRefreshToken(token) {
  try {
    if (token) localStorage.setItem(REFRESH_KEY, token);
    else localStorage.removeItem(REFRESH_KEY);
  } catch {
    /* storage disabled: the session lasts as long as the page */
  }
}

function applyAuth(body) {
  session.accessToken = body.access_token;
  session.expiresAt = Date.now() + (body.expires_in || 900) * 1000;
  storeRefreshToken(body.refresh_token);
  if (body.user) session.user = body.user;
  scheduleRefresh();
}

function scheduleRefresh() {
  clearTimeout(session.timer);
  if (!session.accessToken) return;
  const lifetime = session.expiresAt - Date.now();
  // A minute early; at 80 % of a lifetime shorter than two minutes.
  const wait = Math.max(1000, lifetime > 2 * REFRESH_MARGIN_MS ? lifetime - REFRESH_MARGIN_MS : lifetime * 0.8);
  session.timer = setTimeout(() => {
    refresh().catch((e) => console.warn('token refresh failed', e));
  }, wait);
}

function clearSession() {
  clearTimeout(session.timer);
  session.accessToken = null;
  session.expiresAt = 0;
  session.user = null;
  storeRefreshToken(null);
}

let refreshing = null;

/**
 * Exchanges the stored refresh token for a new pair. One at a time in this tab, and one at a
 * time across tabs (the lock); inside the lock the newest stored token is used, so a token
 * another tab just rotated is never presented again.
 */
export function refresh() {
  if (refreshing) return refreshing;
  const run = async () => {
    const token = storedRefreshToken();
    if (!token) {
      endSession();
      throw new ApiError({ status: 401, code: 'unauthenticated', detail: 'Please sign in.' });
    }
    const res = await rawFetch('POST', '/v1/auth/refresh', { body: { refresh_token: token } });
    if (res.status === 401 || res.status === 400) {
      // Revoked, expired or reused elsewhere: this session is over.
      if (storedRefreshToken() === token) endSession();
      throw problemFrom(res.status, await res.text(), null);
    }
    if (!res.ok) throw problemFrom(res.status, await res.text(), res.headers.get('retry-after'));
    const body = await res.json();
    const hadUser = session.user;
    applyAuth(body);
    if (!body.user && !hadUser) session.user = await api('GET', '/v1/users/me');
    notify();
    return session.accessToken;
  };
  const locked =
    navigator.locks && navigator.locks.request
      ? navigator.locks.request(REFRESH_LOCK, run)
      : run();
  refreshing = locked.finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** A token good for at least the next few seconds (refreshing first if needed), or null. */
export async function freshToken() {
  if (!session.accessToken) return null;
  if (session.expiresAt - Date.now() < 15_000) await refresh();
  return session.accessToken;
}

function endSession() {
  const was = session.user || session.accessToken;
  clearSession();
  if (was) notify();
}

/** Starts the session from a stored refresh token, if there is one. Returns the user or null. */
export async function restoreSession() {
  if (!storedRefreshToken()) return null;
  try {
    await refresh();
    if (!session.user) session.user = await api('GET', '/v1/users/me');
    notify();
    return session.user;
  } catch (e) {
    if (e.code === 'network' || e.status >= 500) throw e;
    return null;
  }
}

export async function register({ username, password, display_name }) {
  const body = await api('POST', '/v1/auth/register', {
    body: { username, password, ...(display_name ? { display_name } : {}) },
    auth: false,
  });
  applyAuth(body);
  notify();
  return body.user;
}

export async function login({ username, password }) {
  const body = await api('POST', '/v1/auth/login', { body: { username, password }, auth: false });
  applyAuth(body);
  notify();
  return body.user;
}

let signingOut = false;
/** Whether a sign-out is under way (its hooks run): start nothing new for this user. */
export const sessionEnding = () => signingOut;

export async function logout() {
  signingOut = true;
  const hooks = [...signOutHooks].map((fn) => Promise.resolve().then(fn).catch((e) => console.warn(e)));
  await Promise.race([Promise.all(hooks), new Promise((r) => setTimeout(r, 3000))]);
  const token = storedRefreshToken();
  try {
    if (token) await api('POST', '/v1/auth/logout', { body: { refresh_token: token }, auth: false });
  } finally {
    endSession();
    signingOut = false;
  }
}

/** Forgets the session without calling the server (after the account is deleted). */
export function forgetSession() {
  endSession();
}

// Another tab signed out (or its refresh was refused): follow it.
window.addEventListener('storage', (e) => {
  if (e.key === REFRESH_KEY && !e.newValue && session.accessToken) endSession();
});
// A laptop that slept past the timer: refresh on return.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && session.accessToken) {
    if (session.expiresAt - Date.now() < REFRESH_MARGIN_MS) refresh().catch(() => {});
  }
});

// ---- requests ---------------------------------------------------------------------------

/** A random id for Idempotency-Key (works on plain http too, where randomUUID may not exist). */
export function newKey() {
  if (crypto.randomUUID) {
    try {
      return crypto.randomUUID();
    } catch {
      /* insecure context */
    }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

async function rawFetch(method, path, { body, query, headers = {}, token } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v != null && v !== '') q.set(k, v);
    const s = q.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  const h = { Accept: 'application/json, application/problem+json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (token) h.Authorization = `Bearer ${token}`;
  try {
    return await fetch(url, {
      method,
      headers: h,
      body: body !== undefined ? JSON.stringify(body) : undefined,
      credentials: 'same-origin',
    });
  } catch (e) {
    throw new ApiError({ status: 0, code: 'network', detail: e.message });
  }
}

/**
 * Calls the API. `auth` (default true): send the access token when signed in (a 401
 * `token_expired` refreshes once and retries). Returns the parsed JSON, or null for 204.
 */
export async function api(method, path, { body, query, idempotencyKey, auth = true } = {}) {
  const headers = {};
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  let token = auth ? await freshToken().catch(() => session.accessToken) : null;
  let res = await rawFetch(method, path, { body, query, headers, token });
  if (res.status === 401 && token) {
    const problem = problemFrom(401, await res.text(), null);
    if (problem.code !== 'token_expired') {
      if (problem.code === 'unauthenticated') endSession();
      throw problem;
    }
    token = await refresh();
    res = await rawFetch(method, path, { body, query, headers, token });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  if (!res.ok) throw problemFrom(res.status, text, res.headers.get('retry-after'));
  return text ? JSON.parse(text) : null;
}

/** Absolute URLs of this server as same-origin paths (the page may be reached by another name). */
export function localUrl(url) {
  if (!url) return url;
  try {
    const u = new URL(url, location.href);
    if (u.origin !== location.origin && u.pathname.startsWith('/v1/')) return u.pathname + u.search;
    return u.href;
  } catch {
    return url;
  }
}
