// "New post": up to 10 photos (drag and drop or pick) and a caption. The post is created with
// POST /v1/posts (its upload tickets come back), each photo goes up resumably with its own
// progress bar, pause and resume, and the post is shown as pending until `post.published`
// (or why it failed).

import { api, currentUser, newKey, onSessionEnd, sessionEnding } from './api.js';
import { onEvent } from './events.js';
import { h, mount, field, messageBox, pageTitle, formatBytes, describeFailure, plural, errorMessage, acceptFiles } from './ui.js';
import { Transfer } from './upload.js';
import { transferRow } from './transfer-view.js';
import { postCard } from './postcard.js';

const MAX_PHOTOS = 10;
const DEFAULT_TYPES = ['image/jpeg', 'image/png', 'image/webp'];
const POLL_MS = 3000;

/** Posts submitted from this page, newest first, kept while the session lasts. */
const submissions = [];
let limitsCache = null;

/** The user's limits (cached), or null when they could not be read (asked again next time). */
async function limits() {
  if (!limitsCache) {
    limitsCache = api('GET', '/v1/limits').catch(() => {
      limitsCache = null;
      return null;
    });
  }
  return limitsCache;
}

// The session ended: nothing of this user stays for the next one (upload.js stops the
// transfers themselves).
onSessionEnd(() => {
  for (const s of submissions.splice(0)) s.finish();
  limitsCache = null;
});

/** `#/new` */
export function composeView(root, { signal }) {
  const heading = h('h1', {}, 'New post');
  const subsEl = h('div', { className: 'submissions' });
  const disposers = [];
  signal.addEventListener('abort', () => disposers.forEach((d) => d()), { once: true });
  for (const s of submissions) subsEl.append(submissionView(s, disposers));

  // ---- the form ----
  let chosen = []; // {file, url, problem}
  const msg = messageBox();
  const input = h('input', { type: 'file', id: 'photo-input', name: 'photos', multiple: true, accept: DEFAULT_TYPES.join(','), className: 'visually-hidden' });
  const pick = h('label', { htmlFor: 'photo-input', className: 'btn' }, 'Choose photos');
  const zone = h('div', { className: 'dropzone', 'aria-describedby': 'drop-hint' },
    h('p', { id: 'drop-hint' }, 'Drag and drop up to 10 photos here (JPEG, PNG or WebP), or'),
    input, pick);
  const grid = h('ul', { className: 'chosen', 'aria-label': 'Chosen photos' });
  const counter = h('p', { className: 'muted small', 'aria-live': 'polite' });
  const caption = field('Caption', { name: 'caption', required: true, maxlength: 2200, rows: 3, placeholder: 'Say something about these photos' }, { tag: 'textarea' });
  const submit = h('button', { type: 'submit', className: 'btn btn-primary' }, 'Share');
  const form = h('form', { className: 'card compose stack' }, zone, grid, counter, caption, msg.el, h('div', { className: 'row end' }, submit));

  let types = DEFAULT_TYPES;
  let maxSize = null;
  limits().then((l) => {
    if (l && l.limits) {
      types = l.limits.post_media_types || DEFAULT_TYPES;
      maxSize = l.limits.max_file_size;
      input.accept = types.join(',');
    }
  });

  const renderChosen = () => {
    grid.replaceChildren(...chosen.map((c, i) =>
      h('li', { className: c.problem ? 'chosen-item has-problem' : 'chosen-item' },
        h('img', { src: c.url, alt: c.file.name }),
        h('span', { className: 'chosen-name' }, c.file.name),
        h('span', { className: 'muted small' }, formatBytes(c.file.size)),
        c.problem ? h('span', { className: 'error-text small', role: 'alert' }, c.problem) : null,
        h('button', {
          type: 'button', className: 'btn-remove', 'aria-label': `Remove ${c.file.name}`,
          onclick: () => {
            URL.revokeObjectURL(c.url);
            chosen.splice(i, 1);
            renderChosen();
          },
        }, '×'))));
    counter.textContent = chosen.length ? `${plural(chosen.length, 'photo')} of at most ${MAX_PHOTOS}` : '';
  };

  const add = (files) => {
    msg.clear();
    const list = Array.from(files || []);
    const room = MAX_PHOTOS - chosen.length;
    if (list.length > room) msg.error(`A post has at most ${MAX_PHOTOS} photos; ${room > 0 ? `only the first ${room} were added` : 'remove some first'}.`);
    for (const file of list.slice(0, Math.max(0, room))) {
      let problem = null;
      if (!types.includes(file.type)) problem = `${file.type || 'This type'} is not supported: photos must be JPEG, PNG or WebP.`;
      else if (maxSize && file.size > maxSize) problem = `Too large: the limit is ${formatBytes(maxSize)}.`;
      chosen.push({ file, url: URL.createObjectURL(file), problem });
    }
    renderChosen();
  };
  acceptFiles(zone, input, add);

  // The same key for the same post, so a retry after a lost answer creates it once.
  let key = newKey();
  let keyBody = '';
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    msg.clear();
    const text = String(form.elements.namedItem('caption').value).trim();
    if (!text) return msg.error('Write a caption.');
    if (chosen.some((c) => c.problem)) return msg.error('Remove the photos that cannot be posted first.');
    const media = chosen.map((c) => ({ filename: c.file.name, content_type: c.file.type, size: c.file.size }));
    const body = { caption: text, ...(media.length ? { media } : {}) };
    const bodyText = JSON.stringify(body);
    if (bodyText !== keyBody) {
      key = newKey();
      keyBody = bodyText;
    }
    submit.disabled = true;
    const owner = currentUser()?.id;
    try {
      const res = await api('POST', '/v1/posts', { body, idempotencyKey: key });
      // The session ended (or another user signed in) while the post was being created: start
      // no upload with whoever's token is current. The pending post stays on the server, where
      // its owner sees it and can delete it.
      if (sessionEnding() || !owner || currentUser()?.id !== owner) return;
      const s = startSubmission(res, chosen.map((c) => c.file));
      chosen.forEach((c) => URL.revokeObjectURL(c.url));
      // The view was left meanwhile (same user): the uploads go on and the post is listed when
      // "New post" is shown again; this view's form and list are gone.
      if (signal.aborted) return;
      chosen = [];
      renderChosen();
      form.reset();
      key = newKey();
      keyBody = '';
      subsEl.prepend(submissionView(s, disposers));
      subsEl.querySelector('.submission').scrollIntoView({ block: 'start', behavior: 'smooth' });
    } catch (err) {
      msg.error(err);
    } finally {
      submit.disabled = false;
    }
  });

  mount(root, heading, form, subsEl);
  pageTitle(heading, 'New post');
}

/** Starts the uploads of a created post and follows it until it is published or failed. */
function startSubmission({ post, uploads }, files) {
  const s = { post, transfers: [], subs: new Set(), done: false };
  // Tickets come in the order of `media`; matched by file id all the same.
  uploads.forEach((ticket, i) => {
    const at = post.media.findIndex((m) => m.file_id === ticket.file_id);
    const t = new Transfer(files[at >= 0 ? at : i], { ticket, postId: post.id });
    s.transfers.push(t);
    t.start();
  });
  s.refresh = async () => {
    if (s.done) return;
    try {
      const p = await api('GET', `/v1/posts/${post.id}`);
      if (s.done) return;
      Object.assign(s.post, p);
      if (p.status !== 'pending') s.finish();
      s.subs.forEach((fn) => fn(s));
    } catch {
      /* the next event or poll */
    }
  };
  s.finish = () => {
    if (s.done) return;
    s.done = true;
    s.unsubscribe();
  };
  s.unsubscribe = onEvent((e) => {
    if (e.post_id === post.id && (e.type === 'post.published' || e.type === 'post.failed')) s.refresh();
  });
  if (post.status !== 'pending') s.finish();
  submissions.unshift(s);
  return s;
}

/**
 * Whether only the server can move the post on: every photo is uploaded, or refused by the
 * server (`failed`: the post fails with it). A photo still going up or paused, or whose upload
 * stopped on an error (resumed by the user, or given up), leaves nothing to poll for.
 */
function waitingForServer(s) {
  return s.transfers.every((t) => t.state === 'processing' || t.state === 'ready' || t.state === 'failed');
}

/**
 * Live events are the fast path; a slow poll of the post covers a stream that dropped an
 * event. It runs only while a view shows the post (`disposers` run when the view is left),
 * while the post is pending, and only when it waits for the server.
 */
function pollWhileShown(s, disposers) {
  if (s.done) return;
  const timer = setInterval(() => {
    if (s.done) clearInterval(timer);
    else if (waitingForServer(s)) s.refresh();
  }, POLL_MS);
  disposers.push(() => clearInterval(timer));
}

function submissionView(s, disposers) {
  const status = h('p', { className: 'submission-status', 'aria-live': 'polite' });
  const rows = s.transfers.map((t) => transferRow(t, { preview: true, canCancel: false }));
  rows.forEach((r) => disposers.push(r.dispose));
  const cardSlot = h('div', { className: 'submission-card' });
  const forget = () => {
    const i = submissions.indexOf(s);
    if (i >= 0) submissions.splice(i, 1);
    s.finish();
    el.remove();
  };
  const dismiss = h('button', { type: 'button', className: 'btn btn-small btn-quiet', onclick: forget }, 'Dismiss');
  // A failed post stays on the server (visible to you only) until deleted.
  const remove = h('button', {
    type: 'button', className: 'btn btn-small btn-quiet danger', hidden: true,
    onclick: async () => {
      remove.disabled = true;
      try {
        await api('DELETE', `/v1/posts/${s.post.id}`);
        forget();
      } catch (err) {
        status.textContent = errorMessage(err);
        remove.disabled = false;
      }
    },
  }, 'Delete post');
  const el = h('section', { className: 'card submission', 'aria-label': 'Your new post', dataset: { postId: s.post.id } },
    h('div', { className: 'row between' }, h('h2', {}, 'Your new post'), h('div', { className: 'row' }, remove, dismiss)),
    status,
    rows.length ? h('ul', { className: 'transfers' }, rows.map((r) => r.el)) : null,
    cardSlot);
  let card = null;
  let shownStatus = null;
  const render = () => {
    const p = s.post;
    el.dataset.status = p.status;
    dismiss.hidden = p.status === 'pending';
    remove.hidden = p.status !== 'failed';
    if (p.status === 'published') {
      status.className = 'submission-status ok';
      status.replaceChildren('Published. ', h('a', { href: `#/post/${p.id}` }, 'View the post'), ' · ', h('a', { href: '#/feed' }, 'Go to your feed'));
    } else if (p.status === 'failed') {
      const bad = p.media.filter((m) => m.status === 'failed');
      status.className = 'submission-status error-text';
      status.setAttribute('role', 'alert');
      status.textContent = `The post could not be published: ${bad.length ? bad.map((m) => describeFailure(m.failure)).join(' ') : 'a photo failed.'}`;
    } else {
      const errors = s.transfers.filter((t) => t.state === 'error' || t.state === 'failed');
      const uploading = s.transfers.filter((t) => t.state === 'uploading' || t.state === 'queued' || t.state === 'paused').length;
      status.className = 'submission-status';
      status.textContent = errors.length
        ? `Pending: ${errors[0].state === 'error' ? errorMessage(errors[0].error) : describeFailure(errors[0].failure)}`
        : uploading
          ? `Pending: uploading ${plural(uploading, 'photo')}…`
          : 'Pending: processing the photos…';
    }
    if (!card) {
      card = postCard(s.post);
      cardSlot.append(card);
    } else if (shownStatus !== p.status) card.update(s.post);
    shownStatus = p.status;
  };
  const onChange = () => render();
  s.subs.add(onChange);
  disposers.push(() => s.subs.delete(onChange));
  for (const t of s.transfers) disposers.push(t.subscribe(() => {
    if (s.post.status === 'pending') render();
  }));
  pollWhileShown(s, disposers);
  render();
  return el;
}
