// DOM helpers, formatting, dialogs, toasts, and error messages people understand.

/**
 * Creates an element. `attrs`: properties (className, textContent, value, checked, ...),
 * `on*` functions as listeners, `dataset` and `aria*` / other strings as attributes.
 * Children: nodes, strings, or null/false (skipped), arrays flattened.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'className' || k === 'textContent' || k === 'value' || k === 'checked' || k === 'htmlFor')
      el[k] = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---- formatting -------------------------------------------------------------------------

export function formatBytes(n) {
  if (n == null || !Number.isFinite(Number(n))) return '?';
  n = Number(n);
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

export function timeAgo(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  if (s < 7 * 86400) return `${Math.round(s / 86400)} d ago`;
  return new Date(t).toLocaleDateString();
}

export function formatDate(iso) {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t).toLocaleString() : '';
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

function formatWait(seconds) {
  const s = Math.ceil(Number(seconds));
  if (!Number.isFinite(s) || s <= 0) return 'a moment';
  if (s < 60) return plural(s, 'second');
  return plural(Math.ceil(s / 60), 'minute');
}

// ---- error messages ---------------------------------------------------------------------

/** What each problem `code` means, in words: the one table for errors of requests and for
 * the `failure` of a file or a post's photo. Codes whose sentence needs numbers (the problem's
 * `limit`, `retryAfter`) are worded in `errorMessage`, falling back to this table. */
const WORDS = {
  network: 'Cannot reach the server. Check your connection and try again.',
  payload_too_large: 'That is too much text to send at once.',
  quota_exceeded: 'Your storage is full. Delete some files to make room.',
  file_too_large: 'This file is larger than your plan allows.',
  too_many_uploads: 'Too many uploads are in progress. Wait for some to finish.',
  unsupported_media_type: 'This type of file is not supported here: photos must be JPEG, PNG or WebP.',
  content_mismatch: 'The file is not what its type says, or the image is damaged.',
  image_too_large: 'The image has too many pixels to process.',
  checksum_mismatch: 'The file was corrupted on the way (its checksum does not match). Try again.',
  size_mismatch: 'The upload ended before the whole file arrived. Try again.',
  upload_expired: 'The upload took too long and expired. Start it again.',
  url_expired: 'That link has expired. Reload the page for a fresh one.',
  invalid_credentials: 'Wrong username or password.',
  username_taken: 'That username is taken. Try another one.',
  token_expired: 'Your session has ended. Please sign in again.',
  unauthenticated: 'Your session has ended. Please sign in again.',
  forbidden: 'You are not allowed to do that.',
  not_found: 'Not found: it may have been deleted, or it is private.',
  internal: 'Something went wrong on the server. Please try again.',
};

/** A failure `{code, detail}` (a file's or a post's media) in words. */
export function describeFailure(failure) {
  if (!failure) return 'It failed for an unknown reason.';
  return WORDS[failure.code] || failure.detail || failure.code;
}

/** An ApiError (or any error) as a sentence for people. */
export function errorMessage(err) {
  if (!err) return 'Something went wrong.';
  const limit = err.limit || {};
  switch (err.code) {
    case 'quota_exceeded':
      // `actual` is the usage including the new file.
      if (limit.value != null && limit.actual != null)
        return `Your storage is full: this upload would bring you to ${formatBytes(limit.actual)} of your ${formatBytes(limit.value)}. Delete some files to make room.`;
      break;
    case 'file_too_large':
      if (limit.value != null)
        return `This file is too large: the limit is ${formatBytes(limit.value)}${limit.actual != null ? ` and it is ${formatBytes(limit.actual)}` : ''}.`;
      break;
    case 'rate_limited':
      return `Too many requests right now. Please wait ${formatWait(err.retryAfter ?? 1)} and try again.`;
    case 'too_many_uploads':
      if (limit.value != null)
        return `You already have ${limit.value} uploads in progress, the most your plan allows. Wait for them to finish.`;
      break;
    case 'image_too_large':
      if (limit.value != null) return `This image is too big to process: at most ${(limit.value / 1e6).toFixed(0)} megapixels.`;
      break;
    case 'validation_failed':
      if (err.errors && err.errors.length)
        return err.errors.map((e) => `${fieldName(e.field)}: ${e.message}`).join(' · ');
      return err.detail || 'Some fields are not valid.';
    case 'conflict':
      return err.detail || 'That conflicts with the current state. Reload and try again.';
    case 'service_unavailable':
      return `The service is busy. Please try again in ${formatWait(err.retryAfter ?? 5)}.`;
    default:
  }
  return WORDS[err.code] || err.detail || err.message || 'Something went wrong.';
}

function fieldName(field) {
  const names = { display_name: 'Display name', username: 'Username', password: 'Password', bio: 'Bio',
    caption: 'Caption', text: 'Comment', filename: 'File name', tags: 'Tags' };
  if (!field) return 'Input';
  const base = String(field).split(/[.[]/)[0];
  return names[base] || base;
}

/** Field errors (validation_failed) by field name, for showing next to inputs. */
export function fieldErrors(err) {
  const out = {};
  for (const e of (err && err.errors) || []) {
    const base = String(e.field || '').split(/[.[]/)[0];
    (out[base] ||= []).push(e.message);
  }
  return out;
}

// ---- toasts and dialogs -----------------------------------------------------------------

export function toast(message, kind = 'info', ms = 6000) {
  const region = document.getElementById('toasts');
  if (!region) return;
  const close = h('button', { type: 'button', className: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  const t = h('div', { className: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', {}, message), close);
  const remove = () => t.remove();
  close.addEventListener('click', remove);
  region.append(t);
  if (ms) setTimeout(remove, ms);
}

/** An inline message box for a form or section (role=alert for errors). */
export function messageBox() {
  const el = h('div', { className: 'message', hidden: true });
  return {
    el,
    error(errOrText) {
      el.className = 'message message-error';
      el.setAttribute('role', 'alert');
      el.textContent = typeof errOrText === 'string' ? errOrText : errorMessage(errOrText);
      el.hidden = false;
    },
    info(text) {
      el.className = 'message message-info';
      el.setAttribute('role', 'status');
      el.textContent = text;
      el.hidden = false;
    },
    clear() {
      el.hidden = true;
      el.textContent = '';
    },
  };
}

/**
 * A modal <dialog> with a form. `body` builds the fields (returns nodes); resolves with the
 * FormData on submit, or null on cancel. Escape and the Cancel button cancel.
 */
export function formDialog({ title, body, submitLabel = 'OK', cancelLabel = 'Cancel', danger = false, onSubmit }) {
  return new Promise((resolve) => {
    const msg = messageBox();
    const submit = h('button', { type: 'submit', className: danger ? 'btn btn-danger' : 'btn btn-primary' }, submitLabel);
    const cancel = h('button', { type: 'button', className: 'btn', hidden: !cancelLabel }, cancelLabel || 'Cancel');
    const form = h('form', { method: 'dialog', className: 'stack' },
      h('h2', {}, title), ...(body ? [body()].flat() : []), msg.el,
      h('div', { className: 'row end' }, cancel, submit));
    const dlg = h('dialog', { className: 'dialog', 'aria-label': title }, form);
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    cancel.addEventListener('click', () => finish(null));
    dlg.addEventListener('cancel', (e) => {
      e.preventDefault();
      finish(null);
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const data = new FormData(form);
      if (onSubmit) {
        submit.disabled = true;
        try {
          const result = await onSubmit(data);
          finish(result === undefined ? data : result);
        } catch (err) {
          msg.error(err);
          submit.disabled = false;
        }
      } else finish(data);
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = form.querySelector('input, textarea, select');
    (first || submit).focus();
  });
}

/** Asks a yes/no question in a modal; resolves true when confirmed. */
export async function confirmDialog(title, text, { confirmLabel = 'OK', danger = false } = {}) {
  const r = await formDialog({ title, body: () => h('p', {}, text), submitLabel: confirmLabel, danger });
  return r !== null;
}

/** A labelled input (or textarea/select when `tag` says so). */
export function field(label, attrs = {}, { tag = 'input', hint, options } = {}) {
  const id = attrs.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  let control;
  if (tag === 'select') {
    control = h('select', { ...attrs, id }, (options || []).map(([v, t]) =>
      h('option', { value: v, selected: attrs.value === v ? true : null }, t)));
    if (attrs.value != null) control.value = attrs.value;
  } else control = h(tag, { ...attrs, id });
  const hintEl = hint ? h('small', { className: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { className: 'field' }, h('label', { htmlFor: id }, label), control, hintEl);
}

/** A progress bar with a text label; `set(fraction, text)`. */
export function progressBar(label) {
  const bar = h('progress', { max: 100, value: 0, 'aria-label': label });
  const text = h('span', { className: 'progress-text' }, '0 %');
  return {
    el: h('div', { className: 'progress' }, bar, text),
    bar,
    set(fraction, caption) {
      const pct = Math.max(0, Math.min(100, Math.floor(fraction * 100)));
      // Never move backwards (the upload's own count and the server's may interleave).
      if (pct >= Number(bar.value)) bar.value = pct;
      text.textContent = caption || `${bar.value} %`;
    },
    text(caption) {
      text.textContent = caption;
    },
  };
}

/** Sets the document title and moves focus to the page heading, for screen readers. */
export function pageTitle(headingEl, title) {
  document.title = title ? `${title} · Shutter` : 'Shutter';
  if (headingEl) {
    headingEl.setAttribute('tabindex', '-1');
    queueMicrotask(() => headingEl.focus({ preventScroll: true }));
  }
}

/** A loading spinner line. */
export const loading = (text = 'Loading…') => h('p', { className: 'loading', role: 'status' }, text);

/** Copies text; resolves true when the clipboard took it. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** Files dropped on `zone` or picked with `input` go to `onFiles` (a FileList); the zone is
 * marked `dragging` while files hover over it. */
export function acceptFiles(zone, input, onFiles) {
  input.addEventListener('change', () => {
    onFiles(input.files);
    input.value = '';
  });
  for (const ev of ['dragenter', 'dragover']) zone.addEventListener(ev, (e) => {
    e.preventDefault();
    zone.classList.add('dragging');
  });
  for (const ev of ['dragleave', 'drop']) zone.addEventListener(ev, () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    onFiles(e.dataTransfer && e.dataTransfer.files);
  });
}
