// Profiles (posts grid, follow / unfollow, follower and following lists) and your settings
// (display name, bio, delete account).

import { api, currentUser, setCurrentUser, forgetSession, localUrl } from './api.js';
import { h, mount, field, messageBox, pageTitle, loading, toast, errorMessage, formDialog, fieldErrors } from './ui.js';
import { pager } from './pager.js';
import { userLink, blurhashCanvas } from './postcard.js';

/** The user of a profile page, with a spinner meanwhile; `null` when the page has been left
 * or the user could not be loaded (the page then says why). */
async function loadUser(root, username, signal) {
  mount(root, loading());
  try {
    const user = await api('GET', `/v1/users/by-username/${encodeURIComponent(username)}`);
    return signal.aborted ? null : user;
  } catch (err) {
    const msg = messageBox();
    msg.error(err);
    mount(root, h('h1', {}, `@${username}`), msg.el);
    return null;
  }
}

/** `#/u/<username>` */
export async function profileView(root, { signal, params: [username] }) {
  const user = await loadUser(root, username, signal);
  if (!user) return;
  const me = currentUser();
  const isMe = me && me.id === user.id;
  const heading = h('h1', {}, user.display_name || user.username);
  const followers = h('a', { href: `#/u/${encodeURIComponent(user.username)}/followers`, className: 'stat' });
  const following = h('a', { href: `#/u/${encodeURIComponent(user.username)}/following`, className: 'stat' });
  const renderStats = () => {
    followers.replaceChildren(h('strong', {}, String(user.followers_count)), user.followers_count === 1 ? ' follower' : ' followers');
    following.replaceChildren(h('strong', {}, String(user.following_count)), ' following');
  };
  renderStats();

  let action = null;
  if (isMe) {
    action = h('a', { href: '#/settings', className: 'btn' }, 'Edit profile');
  } else if (me) {
    action = followButton(user, renderStats, signal);
  } else {
    action = h('a', { href: '#/login', className: 'btn btn-primary' }, 'Sign in to follow');
  }

  const grid = h('ul', { className: 'grid', 'aria-label': `Posts by ${user.username}` });
  const p = pager({
    list: grid,
    signal,
    emptyText: isMe ? 'You have not posted yet.' : 'No posts yet.',
    fetchPage: (cursor) => api('GET', `/v1/users/${user.id}/posts`, { query: { limit: 24, cursor } }),
    renderItem: gridItem,
  });

  mount(root,
    h('section', { className: 'card profile-head' },
      h('div', { className: 'avatar avatar-large', 'aria-hidden': 'true' }, (user.display_name || user.username).charAt(0).toUpperCase()),
      h('div', { className: 'profile-info' },
        heading,
        h('p', { className: 'muted' }, `@${user.username}`),
        user.bio ? h('p', { className: 'bio' }, user.bio) : null,
        h('p', { className: 'stats' },
          h('span', { className: 'stat' }, h('strong', {}, String(user.posts_count)), user.posts_count === 1 ? ' post' : ' posts'),
          followers, following),
        action)),
    grid, p.el);
  pageTitle(heading, `@${user.username}`);
}

/**
 * Follow / Unfollow. The API has no "do I follow them" field, so the button first looks for
 * them in my following list, and stays disabled until it knows (a click before would guess).
 * After a PUT or DELETE the user is read again for the counts.
 */
function followButton(user, onChange, signal) {
  let following = null; // unknown until the scan ends
  const btn = h('button', { type: 'button', className: 'btn', disabled: true, 'aria-busy': 'true' }, 'Follow');
  const render = () => {
    btn.textContent = following ? 'Unfollow' : 'Follow';
    btn.className = following ? 'btn' : 'btn btn-primary';
    btn.setAttribute('aria-pressed', String(!!following));
  };
  const scan = async () => {
    const me = currentUser();
    let cursor = null;
    do {
      const page = await api('GET', `/v1/users/${me.id}/following`, { query: { limit: 100, cursor } });
      if (page.items.some((u) => u.id === user.id)) return true;
      cursor = page.next_cursor;
    } while (cursor && !signal.aborted);
    return false;
  };
  scan().then((v) => {
    following = v;
  }, () => {
    // Unknown: offer Follow (PUT is idempotent, and the counts are read back after it).
    following = false;
  }).finally(() => {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
    render();
  });
  btn.addEventListener('click', async () => {
    if (following === null) return;
    const want = !following;
    btn.disabled = true;
    try {
      await api(want ? 'PUT' : 'DELETE', `/v1/users/${user.id}/follow`);
      following = want;
      render();
      toast(want ? `You follow @${user.username} now` : `You unfollowed @${user.username}`, 'success', 2500);
      try {
        Object.assign(user, await api('GET', `/v1/users/${user.id}`));
        onChange();
      } catch {
        /* the counts stay as they were shown */
      }
    } catch (err) {
      toast(errorMessage(err), 'error');
    } finally {
      btn.disabled = false;
    }
  });
  return btn;
}

function gridItem(post) {
  const m = post.media[0];
  const label = `${post.caption}${post.media.length > 1 ? ` (${post.media.length} photos)` : ''}`;
  const tile = h('a', { href: `#/post/${post.id}`, className: 'tile', 'aria-label': label, title: post.caption });
  if (m && m.variants && m.variants.thumb) {
    const ph = blurhashCanvas(m.blurhash, 1, 1);
    if (ph) tile.append(ph);
    const img = h('img', { src: localUrl(m.variants.thumb.url), alt: '', loading: 'lazy', width: 150, height: 150 });
    img.addEventListener('load', () => tile.classList.add('loaded'), { once: true });
    tile.append(img);
  } else {
    tile.append(h('span', { className: 'tile-text' }, post.caption));
  }
  if (post.media.length > 1) tile.append(h('span', { className: 'tile-multi', 'aria-hidden': 'true' }, '❐'));
  if (post.status !== 'published') tile.append(h('span', { className: `badge badge-${post.status}` }, post.status));
  return h('li', {}, tile);
}

/** `#/u/<username>/followers` and `#/u/<username>/following` */
export async function peopleView(root, { signal, params: [username, which] }) {
  const user = await loadUser(root, username, signal);
  if (!user) return;
  const title = which === 'followers' ? `People following @${user.username}` : `People @${user.username} follows`;
  const heading = h('h1', {}, title);
  const list = h('ul', { className: 'people card' });
  const p = pager({
    list,
    signal,
    emptyText: which === 'followers' ? 'No followers yet.' : 'Not following anyone yet.',
    fetchPage: (cursor) => api('GET', `/v1/users/${user.id}/${which}`, { query: { limit: 50, cursor } }),
    renderItem: (u) => h('li', {}, userLink(u)),
  });
  mount(root, h('p', {}, h('a', { href: `#/u/${encodeURIComponent(user.username)}` }, `← @${user.username}`)), heading, list, p.el);
  pageTitle(heading, title);
}

/** `#/settings`: display name, bio, delete account. */
export function settingsView(root) {
  const me = currentUser();
  const heading = h('h1', {}, 'Settings');
  const msg = messageBox();
  const save = h('button', { type: 'submit', className: 'btn btn-primary' }, 'Save');
  const form = h('form', { className: 'card stack', 'aria-labelledby': 'profile-h' },
    h('h2', { id: 'profile-h' }, 'Profile'),
    field('Display name', { name: 'display_name', value: me.display_name || '', maxlength: 100, autocomplete: 'name' }),
    field('Bio', { name: 'bio', value: me.bio || '', maxlength: 500, rows: 4 }, { tag: 'textarea', hint: 'Up to 500 characters' }),
    msg.el,
    h('div', { className: 'row end' }, save));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    msg.clear();
    save.disabled = true;
    try {
      const d = new FormData(form);
      const user = await api('PATCH', '/v1/users/me', { body: { display_name: String(d.get('display_name')).trim(), bio: String(d.get('bio')).trim() } });
      setCurrentUser(user);
      msg.info('Saved.');
    } catch (err) {
      msg.error(err);
      for (const [name] of Object.entries(fieldErrors(err))) {
        const input = form.elements.namedItem(name);
        if (input) input.setAttribute('aria-invalid', 'true');
      }
    } finally {
      save.disabled = false;
    }
  });

  const del = h('button', { type: 'button', className: 'btn btn-danger' }, 'Delete my account…');
  del.addEventListener('click', async () => {
    const done = await formDialog({
      title: 'Delete your account?',
      submitLabel: 'Delete my account',
      danger: true,
      body: () => [
        h('p', {}, 'Your posts, photos, comments, likes, follows and files will be deleted for good. This cannot be undone.'),
        field('Your password', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' }),
      ],
      onSubmit: async (d) => {
        await api('DELETE', '/v1/users/me', { body: { password: String(d.get('password')) } });
        return true;
      },
    });
    if (done) {
      forgetSession();
      toast('Your account has been deleted.', 'success');
      location.hash = '#/login';
    }
  });

  mount(root, heading,
    h('p', {}, h('a', { href: `#/u/${encodeURIComponent(me.username)}` }, 'View your profile')),
    form,
    h('section', { className: 'card stack danger-zone', 'aria-labelledby': 'danger-h' },
      h('h2', { id: 'danger-h' }, 'Delete account'),
      h('p', { className: 'muted' }, `Signed in as @${me.username} (${me.tier} plan).`),
      h('div', {}, del)));
  pageTitle(heading, 'Settings');
}
