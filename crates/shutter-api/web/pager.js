// Cursor pages ({items, next_cursor}) shown as an endless list: the next page loads when the
// end of the list scrolls into view, or with the "Load more" button (keyboard users, and
// browsers without IntersectionObserver). After a failed page nothing loads by itself (an
// offline browser, a 5xx or a 429 would otherwise be asked again at once, over and over): the
// "Try again" button goes on.

import { h, loading, messageBox } from './ui.js';

/**
 * `list`: the element items are appended to. `fetchPage(cursor)` → {items, next_cursor}.
 * `renderItem(item)` → node (or null to skip the item). `addItem(node)` puts it in the list
 * (default: appended). `onFirstPage(items)` is called once with the first page. `signal`: an
 * AbortSignal that stops it (the view went away). Returns {el, reload, isDone()}.
 */
export function pager({ list, fetchPage, renderItem, addItem, onFirstPage, signal, emptyText = 'Nothing here yet.' }) {
  let cursor = null;
  let done = false;
  let busy = false;
  let first = true;
  let failed = false; // the last page failed: only "Try again" (or reload) goes on
  let generation = 0; // bumped by reload(), so an answer for the old list is dropped
  const add = addItem || ((node) => list.append(node));
  const status = h('div', { className: 'pager-status' });
  const msg = messageBox();
  const more = h('button', { type: 'button', className: 'btn pager-more', hidden: true }, 'Load more');
  const sentinel = h('div', { className: 'pager-sentinel', 'aria-hidden': 'true' });
  const el = h('div', { className: 'pager' }, status, msg.el, more, sentinel);

  async function next() {
    if (busy || done || failed || (signal && signal.aborted)) return;
    busy = true;
    const gen = generation;
    more.hidden = true;
    status.replaceChildren(loading());
    msg.clear();
    try {
      const page = await fetchPage(cursor);
      if ((signal && signal.aborted) || gen !== generation) return;
      for (const item of page.items) {
        const node = renderItem(item);
        if (node) add(node);
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
      if ((signal && signal.aborted) || gen !== generation) return;
      failed = true;
      status.replaceChildren();
      msg.error(err);
      more.hidden = false;
      more.textContent = 'Try again';
    } finally {
      busy = false;
      if (gen !== generation) queueMicrotask(next); // reloaded meanwhile: load the new list
    }
    // Look again where the end of the list is (unless the page failed): still in view (a short
    // page on a tall screen) goes on. An observer reports only changes, and the end may have
    // left the view and come back between two frames while this page was added (a quick
    // scroll); observing anew reports its current state in any case.
    if (!done && !failed && gen === generation && observer) {
      observer.unobserve(sentinel);
      observer.observe(sentinel);
    }
  }

  more.addEventListener('click', () => {
    more.textContent = 'Load more';
    failed = false;
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
    generation += 1;
    list.replaceChildren();
    cursor = null;
    done = false;
    failed = false;
    first = true;
    more.textContent = 'Load more';
    return next();
  }

  next();
  return { el, reload, isDone: () => done };
}
