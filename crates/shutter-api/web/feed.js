// Home feed, explore, and a single post with its comment thread.

import { api, currentUser } from './api.js';
import { h, mount, pageTitle, loading, messageBox, toast, errorMessage, confirmDialog } from './ui.js';
import { pager } from './pager.js';
import { postCard, commentItem, commentForm } from './postcard.js';

const PAGE = 10;

function postList(label) {
  return h('div', { className: 'post-list', role: 'feed', 'aria-label': label, 'aria-busy': 'false' });
}

/** `#/feed`: the people you follow and you; explore below when it is empty. */
export function feedView(root, { signal }) {
  const heading = h('h1', {}, 'Home');
  const list = postList('Home feed');
  const explore = h('section', { className: 'explore-fallback', 'aria-labelledby': 'explore-h' });
  let n = 0;
  const p = pager({
    list,
    signal,
    emptyText: null,
    fetchPage: (cursor) => api('GET', '/v1/feed', { query: { limit: PAGE, cursor } }),
    renderItem: (post) => postCard(post, { eager: n++ === 0 }),
    onFirstPage: (items) => {
      if (items.length) return;
      mount(explore,
        h('div', { className: 'card empty-feed' },
          h('h2', { id: 'explore-h' }, 'Your feed is empty'),
          h('p', {}, 'Follow people to see their posts here, or ', h('a', { href: '#/new' }, 'share your first photos'), '. Meanwhile, this is what everyone is posting:')),
        exploreList(signal));
    },
  });
  mount(root, heading, list, p.el, explore);
  pageTitle(heading, 'Home');
}

function exploreList(signal) {
  const list = postList('Recent posts from everyone');
  const p = pager({
    list,
    signal,
    emptyText: 'No posts yet. Be the first!',
    fetchPage: (cursor) => api('GET', '/v1/explore', { query: { limit: PAGE, cursor } }),
    renderItem: (post) => postCard(post),
  });
  return h('div', {}, list, p.el);
}

/** `#/explore`: recent posts of everyone. */
export function exploreView(root, { signal }) {
  const heading = h('h1', {}, 'Explore');
  mount(root, heading, h('p', { className: 'muted' }, 'Recent posts from everyone.'), exploreList(signal));
  pageTitle(heading, 'Explore');
}

/** `#/post/<id>`: the post and its whole comment thread (oldest first). */
export async function postView(root, { signal, params: [id] }) {
  const heading = h('h1', { className: 'visually-hidden' }, 'Post');
  mount(root, heading, loading());
  let post;
  try {
    post = await api('GET', `/v1/posts/${encodeURIComponent(id)}`);
  } catch (err) {
    const msg = messageBox();
    msg.error(err);
    mount(root, h('h1', {}, 'Post'), msg.el);
    return;
  }
  if (signal.aborted) return;
  const me = currentUser();
  const card = postCard(post, { full: true, eager: true, onDeleted: () => (location.hash = '#/feed') });
  const thread = h('ul', { className: 'comments thread', 'aria-label': 'Comments' });
  const count = h('h2', { id: 'comments-h' }, 'Comments');
  // The thread is oldest first and loads page by page. A comment posted here is shown at once,
  // at the end, marked `just-posted`, while older pages may still be unloaded: pages that load
  // later go in before it, and when its own page comes the node already shown moves into its
  // place (each comment id is shown once).
  const shown = new Map(); // comment id -> li
  const renderComment = (c) => {
    const had = shown.get(c.id);
    if (had) {
      had.classList.remove('just-posted');
      return had;
    }
    const canDelete = me && (me.id === c.author.id || me.id === post.author.id);
    const li = commentItem(c, {
      canDelete,
      onDelete: async () => {
        if (!(await confirmDialog('Delete this comment?', `“${c.text}”`, { confirmLabel: 'Delete', danger: true }))) return;
        try {
          await api('DELETE', `/v1/comments/${c.id}`);
          li.remove();
          shown.delete(c.id);
          card.update({ comment_count: Math.max(0, post.comment_count - 1) });
        } catch (err) {
          toast(errorMessage(err), 'error');
        }
      },
    });
    shown.set(c.id, li);
    return li;
  };
  const p = post.status === 'published'
    ? pager({
        list: thread,
        signal,
        emptyText: 'No comments yet.',
        fetchPage: (cursor) => api('GET', `/v1/posts/${post.id}/comments`, { query: { limit: 50, cursor } }),
        renderItem: renderComment,
        addItem: (li) => thread.insertBefore(li, thread.querySelector(':scope > .just-posted')),
      })
    : null;
  const form = me && post.status === 'published'
    ? commentForm(post.id, (c) => {
        if (shown.has(c.id)) return; // a replayed answer (same Idempotency-Key)
        const li = renderComment(c);
        if (p && !p.isDone()) li.classList.add('just-posted');
        thread.append(li);
        const empty = root.querySelector('.pager .empty');
        if (empty) empty.remove();
        card.update({ comment_count: post.comment_count + 1 });
      })
    : null;
  mount(root, heading, card,
    post.status === 'published'
      ? h('section', { className: 'card thread-card', 'aria-labelledby': 'comments-h' }, count, thread, p && p.el,
          form || h('p', { className: 'muted' }, h('a', { href: '#/login' }, 'Sign in'), ' to comment.'))
      : null);
  pageTitle(heading, `Post by ${post.author.username}`);
}
