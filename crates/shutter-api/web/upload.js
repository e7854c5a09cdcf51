// Uploads, shared by "New post" and "My files": resumable tus uploads (tus-js-client, vendored)
// with pause and resume, progress from the upload itself and from the live events, and the
// file's processing state until it is ready or failed. Every upload goes through Shutter with
// tus (its tickets carry a `tus_url` on every storage backend), always to this page's origin.
// When the session ends every transfer stops: none goes on with the next user's token.

import { api, ApiError, beforeSignOut, currentUser, freshToken, localUrl, onSessionEnd, problemFrom, refresh, sessionEnding } from './api.js';
import { onEvent } from './events.js';

const CHUNK_SIZE = 8 * 1024 * 1024;
const POLL_MS = 3000;

const byFileId = new Map(); // file id -> Transfer, for routing live events
let eventsHooked = false;

function hookEvents() {
  if (eventsHooked) return;
  eventsHooked = true;
  onEvent((e) => {
    const t = e.file_id && byFileId.get(e.file_id);
    if (t) t._event(e);
  });
}

/** Every transfer started in this page (so a view shown again can list them). */
export const transfers = new Set();

/**
 * One file on its way up. `state`: 'queued' | 'uploading' | 'paused' | 'processing' | 'ready'
 * | 'failed' (the server refused the file: `failure`) | 'error' (the transfer stopped: `error`,
 * resumable with resume()) | 'cancelled'. Listen with `subscribe(fn)`; fn(transfer) is called
 * on every change. `sent`/`total` are bytes; `fraction()` is the best of the upload's own
 * count and the server's (`file.progress` events).
 */
export class Transfer {
  constructor(file, { ticket = null, endpoint = null, metadata = {}, onCreated = null, postId = null } = {}) {
    this.file = file;
    // A photo of a post (the post holds the file: the server refuses to delete it alone).
    this.postId = postId;
    // Whose upload this is: no request of it ever goes out with another user's token.
    this.owner = currentUser()?.id ?? null;
    // Stopped for good when the session ended: no request of it goes out any more.
    this.dropped = false;
    this.ticket = ticket;
    this.endpoint = endpoint;
    this.metadata = metadata;
    this.onCreated = onCreated;
    this.fileId = ticket ? ticket.file_id : null;
    this.state = 'queued';
    this.sent = 0;
    this.serverReceived = 0;
    this.total = file.size;
    this.error = null;
    this.failure = null;
    this.record = null; // the File, once known
    this._subs = new Set();
    this._tus = null;
    this._pollTimer = null;
    this._forceRefresh = false;
    this._creating = false; // the creation (POST /v1/tus) is on its way: no upload URL yet
    this._pendingCancel = null; // cancelled during the creation: resolves once handled
    hookEvents();
    if (this.fileId) byFileId.set(this.fileId, this);
    transfers.add(this);
  }

  subscribe(fn) {
    this._subs.add(fn);
    fn(this);
    return () => this._subs.delete(fn);
  }

  _emit() {
    for (const fn of this._subs) {
      try {
        fn(this);
      } catch (e) {
        console.error(e);
      }
    }
  }

  _set(state, extra = {}) {
    Object.assign(this, extra);
    this.state = state;
    this._emit();
  }

  fraction() {
    if (!this.total) return this.state === 'ready' || this.state === 'processing' ? 1 : 0;
    if (this.state === 'processing' || this.state === 'ready') return 1;
    return Math.min(1, Math.max(this.sent, this.serverReceived) / this.total);
  }

  get active() {
    return this.state === 'queued' || this.state === 'uploading' || this.state === 'processing';
  }

  get canPause() {
    return this.state === 'uploading';
  }

  get canResume() {
    return this.state === 'paused' || (this.state === 'error' && !isFinal(this.error && this.error.code));
  }

  /** Whether requests of this upload may still go out: same user, session not over. */
  _mayRequest() {
    return !this.dropped && this.owner !== null && currentUser()?.id === this.owner;
  }

  start() {
    if (this.state !== 'queued' && !this.canResume) return;
    if (!this._mayRequest() || sessionEnding()) {
      this._drop();
      return;
    }
    this.error = null;
    if (this.ticket && !this.ticket.tus_url) {
      this._set('error', { error: new ApiError({ code: 'no_tus_url', detail: 'The server gave no resumable upload address for this file, so it cannot be uploaded.' }) });
      return;
    }
    this._set('uploading');
    this._startTus();
  }

  pause() {
    if (!this.canPause) return;
    this._set('paused');
    if (this._tus) this._tus.abort(false);
  }

  resume() {
    if (!this.canResume) return;
    this.start();
  }

  /** Stops and removes the unfinished upload on the server (tus termination). */
  async cancel() {
    const wasActive = this.state === 'uploading' || this.state === 'paused' || this.state === 'error';
    this._set('cancelled');
    this._stopPolling();
    byFileId.delete(this.fileId);
    if (this._tus && wasActive) {
      if (this._creating && !this._tus.url) {
        // The creation is on its way: the upload has no URL to DELETE yet, and aborting now
        // would leave it on the server. Let the creation finish: onUploadUrlAvailable sends
        // the DELETE then (if the session lasts), and sends nothing else.
        await new Promise((resolve) => {
          this._pendingCancel = resolve;
        });
      } else {
        try {
          await this._tus.abort(true);
        } catch {
          /* already gone, or the session is over */
        }
      }
    }
    transfers.delete(this);
  }

  _settleCancel() {
    const done = this._pendingCancel;
    this._pendingCancel = null;
    if (done) done();
  }

  /** Stops for good without a word to the server (the session is over): no request follows. */
  _drop() {
    this.dropped = true;
    if (this.state !== 'ready' && this.state !== 'failed' && this.state !== 'cancelled') this._set('cancelled');
    this._stopPolling();
    if (this._tus) this._tus.abort(false).catch(() => {});
    this._settleCancel();
  }

  // ---- tus ----

  _startTus() {
    const tus = window.tus;
    if (!tus || !tus.isSupported) {
      this._set('error', { error: new ApiError({ code: 'unsupported', detail: 'This browser cannot upload files.' }) });
      return;
    }
    if (this._tus) {
      this._tus.start(); // resumes: HEAD for the offset, then PATCH from there
      return;
    }
    const opts = {
      chunkSize: CHUNK_SIZE,
      retryDelays: [0, 1000, 3000, 6000, 10000],
      storeFingerprintForResuming: false,
      removeFingerprintOnSuccess: true,
      metadata: this.metadata,
      onBeforeRequest: async (req) => {
        if (this._forceRefresh) {
          this._forceRefresh = false;
          await refresh().catch(() => {});
        }
        const token = await freshToken();
        // Signed out, or another user signed in, meanwhile (a late retry): send nothing.
        if (!token || !this._mayRequest()) throw new ApiError({ status: 401, code: 'unauthenticated', detail: 'Signed out.' });
        // Cancelled or dropped: only the termination (DELETE) may still go out.
        const method = req.getMethod();
        if (method !== 'DELETE' && this.state === 'cancelled') throw new ApiError({ code: 'cancelled', detail: 'Cancelled.' });
        req.setHeader('Authorization', `Bearer ${token}`);
        if (method === 'POST') this._creating = true;
      },
      onShouldRetry: (err) => {
        const res = err.originalResponse;
        const status = res ? res.getStatus() : 0;
        const req = err.originalRequest;
        // Never again after the session ended or the user changed.
        if (!this._mayRequest()) return false;
        if (req && req.getMethod() === 'DELETE') {
          // Cancel (tus termination) right after abort(): the server refuses it (409) while
          // the aborted PATCH still holds the upload, for a moment. Try again (retryDelays),
          // as long as this user's session lasts (onBeforeRequest checks again before each).
          return status === 0 || status === 409 || status === 423 || status >= 500;
        }
        if (this.state !== 'uploading') return false;
        if (status === 401) {
          const p = problemFrom(401, res.getBody(), null);
          if (p.code === 'token_expired') {
            this._forceRefresh = true;
            return true;
          }
          return false;
        }
        if (status === 460) return true; // checksum of one PATCH: the bytes were dropped, send again
        if (status === 429 && problemFrom(429, res.getBody(), null).code === 'rate_limited') return true;
        if (status >= 400 && status < 500 && status !== 409 && status !== 423) return false;
        return navigator.onLine !== false;
      },
      onUploadUrlAvailable: () => {
        // The creation's Location is absolute, built from the server's public_url: on another
        // host name than this page's the PATCHes would leave the origin (and CSP refuses them).
        // tus-js-client calls this right after setting `url` and before its first PATCH, HEAD
        // or DELETE, which all use `url`.
        this._tus.url = localUrl(this._tus.url);
        this._creating = false;
        if (this.state === 'cancelled') {
          // Cancelled while it was being created: remove it now that it has a URL (abort
          // stops the upload before its first PATCH), unless the session is over.
          const removal = this._mayRequest() ? this._tus.abort(true) : this._tus.abort(false);
          removal.catch(() => {}).finally(() => this._settleCancel());
          return;
        }
        this._created(lastSegment(this._tus.url));
      },
      onProgress: (sent, total) => {
        if (this.state !== 'uploading') return;
        this.sent = sent;
        if (total) this.total = total;
        this._emit();
      },
      onSuccess: () => {
        if (this.state !== 'cancelled') this._uploaded();
      },
      onError: (err) => {
        this._creating = false;
        this._settleCancel();
        if (this.state === 'paused' || this.state === 'cancelled') return;
        this._set('error', { error: tusError(err) });
        if (this.error.code !== 'network' && this.fileId && isFinal(this.error.code)) this._fetchRecord();
      },
    };
    if (this.ticket) opts.uploadUrl = localUrl(this.ticket.tus_url);
    else opts.endpoint = this.endpoint;
    this._tus = new tus.Upload(this.file, opts);
    this._tus.start();
  }

  _created(fileId) {
    if (!fileId || this.fileId === fileId) return;
    this.fileId = fileId;
    byFileId.set(fileId, this);
    if (this.onCreated) this.onCreated(this);
    this._emit();
  }

  // ---- after the bytes ----

  _uploaded() {
    this.sent = this.total;
    if (this.state === 'ready' || this.state === 'failed') return; // the events were quicker
    this._set('processing');
    this._fetchRecord();
    this._startPolling();
  }

  async _fetchRecord() {
    if (!this.fileId) return;
    try {
      const f = await api('GET', `/v1/files/${this.fileId}`);
      this._apply(f);
    } catch {
      /* the next event or poll will tell */
    }
  }

  _apply(f) {
    this.record = f;
    if (f.bytes_received > this.serverReceived) this.serverReceived = f.bytes_received;
    if (f.status === 'ready') {
      this._stopPolling();
      this._set('ready', { error: null });
    } else if (f.status === 'failed') {
      this._stopPolling();
      this._set('failed', { failure: f.failure || { code: 'internal', detail: '' } });
    } else this._emit();
  }

  _startPolling() {
    this._stopPolling();
    this._pollTimer = setInterval(() => {
      if (this.state !== 'processing') return this._stopPolling();
      this._fetchRecord();
    }, POLL_MS);
  }

  _stopPolling() {
    clearInterval(this._pollTimer);
    this._pollTimer = null;
  }

  _event(e) {
    switch (e.type) {
      case 'file.progress':
        if (e.bytes_received > this.serverReceived) this.serverReceived = e.bytes_received;
        if (e.size) this.total = e.size;
        this._emit();
        break;
      case 'file.processing':
        if (this.state === 'uploading' || this.state === 'queued') {
          this.sent = this.total;
          this._set('processing');
          this._startPolling();
        }
        break;
      case 'file.ready':
        this._stopPolling();
        this.sent = this.total;
        this._set('ready', { error: null });
        this._fetchRecord();
        break;
      case 'file.failed':
        this._stopPolling();
        this._set('failed', { failure: e.failure || { code: 'internal', detail: '' } });
        break;
      default:
    }
  }
}

function lastSegment(url) {
  if (!url) return null;
  const path = new URL(url, location.href).pathname.replace(/\/+$/, '');
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || null;
}

/** Codes after which resuming makes no sense (the file itself is refused). */
function isFinal(code) {
  return ['content_mismatch', 'checksum_mismatch', 'size_mismatch', 'image_too_large', 'file_too_large',
    'quota_exceeded', 'unsupported_media_type', 'upload_expired', 'not_found', 'no_tus_url', 'unsupported'].includes(code);
}

/** A tus-js-client error as an ApiError, from the problem body of the failed response. */
function tusError(err) {
  const res = err && err.originalResponse;
  if (res && res.getStatus()) {
    return problemFrom(res.getStatus(), res.getBody(), res.getHeader('Retry-After'));
  }
  return new ApiError({ code: 'network', detail: err && err.message });
}

/** Whether any transfer is still sending bytes (to warn before leaving the page). */
export function uploadsInFlight() {
  for (const t of transfers) if (t.state === 'uploading' || t.state === 'queued') return true;
  return false;
}

/** Whether a transfer may still send bytes or be resumed (so it holds an unfinished upload). */
function unfinished(t) {
  return t.state === 'queued' || t.state === 'uploading' || t.state === 'paused' || (t.state === 'error' && t.canResume);
}

// Sign out with the button: remove this user's unfinished uploads from the server while the
// token still works (else they count against the quota until they expire). A post's photos
// are only stopped here: the post holds them (the server refuses to delete them alone), and
// the pending post stays on the server for its owner to delete. Uploads that turn up while
// the sign-out runs are taken too, until none is left.
beforeSignOut(async () => {
  const seen = new Set();
  for (;;) {
    const batch = [...transfers].filter((t) => !seen.has(t) && unfinished(t));
    if (!batch.length) return;
    for (const t of batch) seen.add(t);
    await Promise.all(batch.map((t) => (t.postId ? t._drop() : t.cancel())));
  }
});
// Any end of the session (sign-out, account deleted, refresh refused, another tab signed
// out): stop every transfer and poll at once and forget them, so the next user of this tab
// neither sees them nor carries them on with their own token.
onSessionEnd(() => {
  const all = [...transfers];
  transfers.clear();
  byFileId.clear();
  for (const t of all) t._drop();
});

window.addEventListener('beforeunload', (e) => {
  if (uploadsInFlight()) {
    e.preventDefault();
    e.returnValue = '';
  }
});
