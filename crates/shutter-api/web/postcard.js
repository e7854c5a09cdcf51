// A post as a card: author, photos (blurhash placeholder, then the w640 variant with a w1080
// srcset), caption, like button, comment preview and a comment box. Used by the feed, explore,
// the post page and the pending post of "New post".

import { api, currentUser, localUrl, newKey } from './api.js';
import {
  h, mount, timeAgo, formatDate, plural, toast, errorMessage, describeFailure, messageBox, confirmDialog, formDialog, field,
} from './ui.js';
import { decode } from './vendor/blurhash/blurhash.mjs';

const PLACEHOLDER_WIDTH = 32;

/** A canvas painted from a blurhash, or null when the hash does not decode. */
export function blurhashCanvas(hash, width, height) {
  if (!hash) return null;
  const w = PLACEHOLDER_WIDTH;
  const ht = Math.max(1, Math.round((PLACEHOLDER_WIDTH * (height || 1)) / (width || 1)));
  try {
    const pixels = decode(hash, w, Math.min(ht, 128));
    const canvas = h('canvas', { width: w, height: Math.min(ht, 128), className: 'photo-placeholder', 'aria-hidden': 'true' });
    const ctx = canvas.getContext('2d');
    const img = ctx.createImageData(w, Math.min(ht, 128));
    img.data.set(pixels);
    ctx.putImageData(img, 0, 0);
    return canvas;
  } catch {
    return null;
  }
}

/**
 * One photo: a box of the photo's aspect ratio holding the blurhash placeholder, and the
 * `w640` variant (srcset with `w1080`) that fades in over it once loaded.
 */
export function photo(media, alt, { sizes = '(max-width: 680px) 100vw, 640px', eager = false } = {}) {
  const box = h('div', { className: 'photo' });
  if (media.width && media.height) box.style.aspectRatio = `${media.width} / ${media.height}`;
  const v = media.variants || {};
  if (media.status === 'failed') {
    box.classList.add('photo-failed');
    box.append(h('p', { className: 'photo-note' }, `This photo failed: ${describeFailure(media.failure)}`));
    return box;
  }
  const canvas = blurhashCanvas(media.blurhash, media.width, media.height);
  if (canvas) box.append(canvas);
  const main = v.w640 || v.w1080;
  if (!main) {
    box.classList.add('photo-pending');
    box.append(h('p', { className: 'photo-note' }, media.status === 'processing' ? 'Processing…' : 'Uploading…'));
    return box;
  }
  const srcset = [`${localUrl(main.url)} ${main.width}w`];
  if (v.w1080 && v.w640 && v.w1080.width > v.w640.width) srcset.push(`${localUrl(v.w1080.url)} ${v.w1080.width}w`);
  const img = h('img', {
    className: 'photo-img',
    src: localUrl(main.url),
    srcset: srcset.join(', '),
    sizes,
    alt,
    loading: eager ? 'eager' : 'lazy',
    decoding: 'async',
    width: main.width,
    height: main.height,
  });
  const loaded = () => box.classList.add('loaded');
  if (img.complete && img.naturalWidth) loaded();
  else img.addEventListener('load', loaded, { once: true });
  img.addEventListener('error', () => box.classList.add('photo-error'), { once: true });
  box.append(img);
  return box;
}

function gallery(post, eager) {
  const n = post.media.length;
  if (!n) return null;
  const who = post.author.display_name || post.author.username;
  const items = post.media.map((m, i) =>
    h('li', { className: 'gallery-item' },
      photo(m, n > 1 ? `Photo ${i + 1} of ${n} by ${who}` : `Photo by ${who}`, { eager: eager && i === 0 })));
  const list = h('ul', { className: 'gallery-track', role: 'list' }, items);
  if (n === 1) return h('div', { className: 'gallery' }, list);
  const counter = h('span', { className: 'gallery-counter', 'aria-hidden': 'true' }, `1 / ${n}`);
  list.setAttribute('tabindex', '0');
  list.setAttribute('aria-label', `${n} photos; scroll sideways or use the arrow keys`);
  const step = (d) => list.scrollBy({ left: d * list.clientWidth, behavior: 'smooth' });
  const prev = h('button', { type: 'button', className: 'gallery-nav prev', 'aria-label': 'Previous photo', hidden: true, onclick: () => step(-1) }, '‹');
  const next = h('button', { type: 'button', className: 'gallery-nav next', 'aria-label': 'Next photo', onclick: () => step(1) }, '›');
  list.addEventListener('scroll', () => {
    const i = Math.min(n - 1, Math.round(list.scrollLeft / Math.max(1, list.clientWidth)));
    counter.textContent = `${i + 1} / ${n}`;
    prev.hidden = i === 0;
    next.hidden = i === n - 1;
  }, { passive: true });
  return h('div', { className: 'gallery multi' }, list, prev, next, counter);
}

export function userLink(u, className = 'user-link') {
  return h('a', { href: `#/u/${encodeURIComponent(u.username)}`, className },
    h('span', { className: 'avatar', 'aria-hidden': 'true' }, (u.display_name || u.username || '?').trim().charAt(0).toUpperCase()),
    h('span', { className: 'user-names' },
      h('strong', {}, u.display_name || u.username),
      h('span', { className: 'muted' }, ` @${u.username}`)));
}

export function commentItem(c, { onDelete, canDelete = false } = {}) {
  const del = canDelete
    ? h('button', { type: 'button', className: 'btn-link danger', 'aria-label': `Delete comment by ${c.author.username}`, onclick: onDelete }, 'Delete')
    : null;
  return h('li', { className: 'comment', dataset: { id: c.id } },
    h('a', { href: `#/u/${encodeURIComponent(c.author.username)}`, className: 'comment-author' }, c.author.username),
    ' ',
    h('span', { className: 'comment-text' }, c.text),
    ' ',
    h('time', { className: 'muted small', datetime: c.created_at, title: formatDate(c.created_at) }, timeAgo(c.created_at)),
    del ? ' ' : null, del);
}

/**
 * A comment form. `onPosted(comment)` after success. The Idempotency-Key stays the same
 * until the text changes, so pressing Send twice (or a retry) posts once.
 */
export function commentForm(postId, onPosted) {
  const input = h('input', { type: 'text', name: 'text', maxlength: 2200, required: true, placeholder: 'Add a comment…', 'aria-label': 'Add a comment', autocomplete: 'off' });
  const send = h('button', { type: 'submit', className: 'btn btn-small' }, 'Post');
  const msg = messageBox();
  let key = newKey();
  let keyText = '';
  const form = h('form', { className: 'comment-form' }, input, send, msg.el);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (text !== keyText) {
      key = newKey();
      keyText = text;
    }
    send.disabled = true;
    msg.clear();
    try {
      const c = await api('POST', `/v1/posts/${postId}/comments`, { body: { text }, idempotencyKey: key });
      input.value = '';
      keyText = '';
      onPosted(c);
    } catch (err) {
      msg.error(err);
    } finally {
      send.disabled = false;
    }
  });
  return form;
}

function likeButton(post, onChange) {
  const btn = h('button', { type: 'button', className: 'btn-like' });
  const count = h('span', { className: 'like-count' });
  const render = () => {
    btn.setAttribute('aria-pressed', String(post.liked_by_me));
    btn.setAttribute('aria-label', post.liked_by_me ? 'Unlike' : 'Like');
    btn.textContent = post.liked_by_me ? '♥' : '♡';
    count.textContent = plural(post.like_count, 'like');
  };
  btn.addEventListener('click', async () => {
    if (!currentUser()) {
      location.hash = '#/login';
      return;
    }
    const liked = !post.liked_by_me;
    post.liked_by_me = liked;
    post.like_count = Math.max(0, post.like_count + (liked ? 1 : -1));
    render();
    btn.disabled = true;
    try {
      await api(liked ? 'PUT' : 'DELETE', `/v1/posts/${post.id}/like`);
      if (onChange) onChange(post);
    } catch (err) {
      post.liked_by_me = !liked;
      post.like_count = Math.max(0, post.like_count + (liked ? -1 : 1));
      render();
      toast(errorMessage(err), 'error');
    } finally {
      btn.disabled = false;
    }
  });
  render();
  return h('span', { className: 'like' }, btn, count);
}

/**
 * The card. `full`: on the post page (the whole thread is shown below it, so no preview).
 * `onDeleted()`: after the author deletes it.
 */
export function postCard(post, { full = false, onDeleted, eager = false } = {}) {
  const me = currentUser();
  const mine = me && me.id === post.author.id;
  const card = h('article', { className: 'card post', dataset: { id: post.id, status: post.status } });
  const render = () => {
    const status = post.status !== 'published'
      ? h('span', { className: `badge badge-${post.status}` }, post.status === 'pending' ? 'Pending' : 'Failed')
      : null;
    const failedMedia = post.media.find((m) => m.status === 'failed');
    const commentsCount = h('a', { href: `#/post/${post.id}`, className: 'comment-count' }, plural(post.comment_count, 'comment'));
    const preview = !full && post.comments_preview && post.comments_preview.length
      ? h('ul', { className: 'comments preview' },
          [...post.comments_preview].reverse().map((c) => commentItem(c)))
      : null;
    const del = mine && full
      ? h('button', { type: 'button', className: 'btn btn-small btn-quiet danger', onclick: () => removePost(post, onDeleted) }, 'Delete post')
      : null;
    const edit = mine && full && post.status !== 'failed'
      ? h('button', { type: 'button', className: 'btn btn-small btn-quiet', onclick: () => editCaption(post, render) }, 'Edit caption')
      : null;
    mount(card,
      h('header', { className: 'post-head' },
        userLink(post.author),
        h('a', { href: `#/post/${post.id}`, className: 'muted small post-time' },
          h('time', { datetime: post.created_at, title: formatDate(post.created_at) }, timeAgo(post.created_at))),
        status),
      post.status === 'failed'
        ? h('p', { className: 'message message-error', role: 'alert' },
            `This post could not be published. ${failedMedia ? describeFailure(failedMedia.failure) : ''}`)
        : null,
      gallery(post, eager),
      h('div', { className: 'post-body' },
        post.status === 'published' ? h('div', { className: 'post-actions' }, likeButton(post), commentsCount) : null,
        h('p', { className: 'caption' },
          h('a', { href: `#/u/${encodeURIComponent(post.author.username)}`, className: 'comment-author' }, post.author.username),
          ' ', post.caption),
        preview,
        !full && me && post.status === 'published'
          ? commentForm(post.id, (c) => {
              post.comment_count += 1;
              post.comments_preview = [c, ...(post.comments_preview || [])].slice(0, 3);
              render();
              toast('Comment posted', 'success', 2500);
            })
          : null,
        edit || del ? h('div', { className: 'row' }, edit, del) : null));
  };
  render();
  card.update = (p) => {
    Object.assign(post, p);
    card.dataset.status = post.status;
    render();
  };
  return card;
}

async function removePost(post, onDeleted) {
  if (!(await confirmDialog('Delete this post?', 'The post, its photos, likes and comments will be gone for good.', { confirmLabel: 'Delete', danger: true }))) return;
  try {
    await api('DELETE', `/v1/posts/${post.id}`);
    toast('Post deleted', 'success');
    if (onDeleted) onDeleted();
  } catch (err) {
    toast(errorMessage(err), 'error');
  }
}

async function editCaption(post, rerender) {
  await formDialog({
    title: 'Edit caption',
    submitLabel: 'Save',
    body: () => field('Caption', { name: 'caption', value: post.caption, maxlength: 2200, required: true }, { tag: 'textarea' }),
    onSubmit: async (data) => {
      const p = await api('PATCH', `/v1/posts/${post.id}`, { body: { caption: String(data.get('caption')).trim() } });
      Object.assign(post, p);
      rerender();
    },
  });
}
