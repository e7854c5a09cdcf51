// Cursor pages ({items, next_cursor}) shown as an endless list: the next page loads when the
// end of the list scrolls into view, or with the "Load more" button (keyboard users, and
// browsers without IntersectionObserver).

import { h, loading, messageBox } from './ui.js';

/**
 * `list`: the element items are appended to. `fetchPage(cursor)` → {items, next_cursor}.
 * `renderItem(item)` → node. `onFirstPage(items)` is called once with the first page.
 * `signal`: an AbortSignal that stops it (the view went away). Returns {el, reload}.
 */
export function pager({ list, fetchPage, renderItem, onFirstPage, signal, emptyText = 'Nothing here yet.' }) {
  let cursor = null;
  let done = false;
  let busy = false;
  let first = true;
  const status = h('div', { className: 'pager-status' });
  const msg = messageBox();
  const more = h('button', { type: 'button', className: 'btn pager-more', hidden: true }, 'Load more');
  const sentinel = h('div', { className: 'pager-sentinel', 'aria-hidden': 'true' });
  const el = h('div', { className: 'pager' }, status, msg.el, more, sentinel);

  async function next() {
    if (busy || done || (signal && signal.aborted)) return;
    busy = true;
    more.hidden = true;
    status.replaceChildren(loading());
    msg.clear();
    try {
      const page = await fetchPage(cursor);
      if (signal && signal.aborted) return;
      for (const item of page.items) {
        const node = renderItem(item);
        if (node) list.append(node);
      }
      cursor = page.next_cursor;
      done = !cursor;
      if (first) {
        first = false;
        if (onFirstPage) onFirstPage(page.items);
        if (!page.items.length && emptyText) status.replaceChildren(h('p', { className: 'muted empty' }, emptyText));
        else status.replaceChildren();
      } else status.replaceChildren();
      more.hidden = done;
      if (done && list.children.length) status.replaceChildren(h('p', { className: 'muted small end-of-list' }, 'That’s all.'));
    } catch (err) {
      status.replaceChildren();
      msg.error(err);
      more.hidden = false;
      more.textContent = 'Try again';
    } finally {
      busy = false;
    }
    // Still in view (a short page on a tall screen): keep going.
    if (!done && observer && isVisible(sentinel)) queueMicrotask(next);
  }

  more.addEventListener('click', () => {
    more.textContent = 'Load more';
    next();
  });

  let observer = null;
  if ('IntersectionObserver' in window) {
    observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) next();
    }, { rootMargin: '600px 0px' });
    observer.observe(sentinel);
  }
  if (signal) signal.addEventListener('abort', () => observer && observer.disconnect(), { once: true });

  function reload() {
    list.replaceChildren();
    cursor = null;
    done = false;
    first = true;
    return next();
  }

  next();
  return { el, reload };
}

function isVisible(el) {
  if (!el.isConnected) return false;
  const r = el.getBoundingClientRect();
  return r.top < window.innerHeight + 600 && r.bottom > -600;
}
