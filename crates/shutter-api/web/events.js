// Live events of the signed-in user: one EventSource on GET /v1/events?access_token=… shared
// by every view. Reconnects with the current token (after a refresh, or when the stream drops).

import { accessToken, currentUser, freshToken, onSessionChange } from './api.js';

const TYPES = ['file.progress', 'file.processing', 'file.ready', 'file.failed', 'post.published', 'post.failed'];
const handlers = new Set();
let source = null;
let sourceUser = null;
let retryTimer = null;
let retryDelay = 1000;

/** Calls `fn(event)` for every live event; returns an unsubscribe function. */
export function onEvent(fn) {
  handlers.add(fn);
  ensureConnected();
  return () => handlers.delete(fn);
}

function dispatch(e) {
  let data;
  try {
    data = JSON.parse(e.data);
  } catch {
    return;
  }
  for (const fn of handlers) {
    try {
      fn(data);
    } catch (err) {
      console.error(err);
    }
  }
}

function close() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (source) source.close();
  source = null;
  sourceUser = null;
}

let connecting = null;

/** Opens the stream if signed in and not open for the current user. */
export function ensureConnected() {
  if (!connecting) connecting = connect().finally(() => (connecting = null));
  return connecting;
}

async function connect() {
  if (!accessToken()) return close();
  const user = currentUser() && currentUser().id;
  if (source && sourceUser === user && source.readyState !== EventSource.CLOSED) return;
  let token;
  try {
    token = await freshToken();
  } catch {
    return;
  }
  if (!token) return close();
  if (source && sourceUser === user && source.readyState !== EventSource.CLOSED) return;
  close();
  const es = new EventSource(`/v1/events?access_token=${encodeURIComponent(token)}`);
  source = es;
  sourceUser = user;
  for (const t of TYPES) es.addEventListener(t, dispatch);
  es.onmessage = dispatch;
  es.onopen = () => {
    retryDelay = 1000;
  };
  es.onerror = () => {
    // The browser retries by itself with the same URL while the stream is merely cut; once it
    // gives up (CLOSED: a 401 for an expired token, say) open a new one with a fresh token.
    if (es.readyState === EventSource.CLOSED && source === es) {
      source = null;
      clearTimeout(retryTimer);
      retryTimer = setTimeout(ensureConnected, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30_000);
    }
  };
}

// The stream, once open, outlives the token it was opened with; it is opened again (with the
// current token) when it closes, or when another user signs in. Signed out: closed.
onSessionChange(() => {
  if (!accessToken()) close();
  else if (handlers.size && sourceUser !== (currentUser() && currentUser().id)) ensureConnected();
});
