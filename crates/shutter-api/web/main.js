// Shutter's web app: hash routes (the server only serves `/` and `/app/…`), the header, and
// the session start.

import { currentUser, logout, onSessionChange, restoreSession } from './api.js';
import { ensureConnected } from './events.js';
import { h, mount, toast, errorMessage, messageBox } from './ui.js';
import { loginView, signupView } from './auth.js';
import { feedView, exploreView, postView } from './feed.js';
import { composeView } from './compose.js';
import { profileView, peopleView, settingsView } from './profile.js';
import { filesView } from './files.js';

// [pattern, view, needs sign-in]
const routes = [
  [/^\/login$/, loginView, false],
  [/^\/signup$/, signupView, false],
  [/^\/feed$/, feedView, true],
  [/^\/explore$/, exploreView, false],
  [/^\/new$/, composeView, true],
  [/^\/files$/, filesView, true],
  [/^\/settings$/, settingsView, true],
  [/^\/post\/([^/]+)$/, postView, false],
  [/^\/u\/([^/]+)\/(followers|following)$/, peopleView, false],
  [/^\/u\/([^/]+)$/, profileView, false],
];

const main = document.getElementById('main');
let current = null; // AbortController of the shown view

function route() {
  const path = decodeURIComponent((location.hash || '').replace(/^#/, '')) || '';
  if (!path || path === '/') {
    location.replace(currentUser() ? '#/feed' : '#/explore');
    return;
  }
  if (current) current.abort();
  current = new AbortController();
  const signal = current.signal;
  for (const [re, view, needsAuth] of routes) {
    const m = path.match(re);
    if (!m) continue;
    if (needsAuth && !currentUser()) {
      sessionStorage.setItem('shutter.after_login', `#${path}`);
      location.replace('#/login');
      return;
    }
    if ((view === loginView || view === signupView) && currentUser()) {
      location.replace('#/feed');
      return;
    }
    markNav(path);
    window.scrollTo(0, 0);
    Promise.resolve(view(main, { signal, params: m.slice(1) })).catch((err) => {
      console.error(err);
      const msg = messageBox();
      msg.error(err);
      mount(main, h('h1', {}, 'Something went wrong'), msg.el);
    });
    return;
  }
  markNav(path);
  mount(main, h('h1', {}, 'Not found'), h('p', {}, 'There is nothing at this address. ', h('a', { href: '#/feed' }, 'Go home')));
}

// ---- header ----

const nav = document.getElementById('nav');

function link(href, text, extra = {}) {
  return h('a', { href, className: 'nav-link', ...extra }, text);
}

function renderNav() {
  const me = currentUser();
  if (me) {
    const out = h('button', { type: 'button', className: 'nav-link btn-link', id: 'sign-out' }, 'Sign out');
    out.addEventListener('click', async () => {
      try {
        await logout();
      } catch (err) {
        toast(errorMessage(err), 'error');
      }
      location.hash = '#/login';
    });
    mount(nav,
      link('#/feed', 'Home'),
      link('#/explore', 'Explore'),
      link('#/new', 'New post', { className: 'nav-link nav-primary' }),
      link('#/files', 'My files'),
      link(`#/u/${encodeURIComponent(me.username)}`, 'Profile', { title: `@${me.username}` }),
      out);
  } else {
    mount(nav, link('#/explore', 'Explore'), link('#/login', 'Sign in'), link('#/signup', 'Sign up', { className: 'nav-link nav-primary' }));
  }
  markNav((location.hash || '').replace(/^#/, ''));
}

function markNav(path) {
  for (const a of nav.querySelectorAll('a')) {
    const target = a.getAttribute('href').replace(/^#/, '');
    if (path === target || (target.startsWith('/u/') && path.startsWith(target))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---- start ----

let started = false;
let lastUserId = null;
onSessionChange((user) => {
  renderNav();
  const id = user ? user.id : null;
  if (!started || id === lastUserId) return;
  lastUserId = id;
  if (!user) {
    // Signed out (here or in another tab, or the session was revoked).
    const path = (location.hash || '').replace(/^#/, '');
    if (!/^\/(login|signup|explore|post\/|u\/)/.test(path)) location.hash = '#/login';
  } else ensureConnected();
});

async function start() {
  try {
    await restoreSession();
  } catch (err) {
    toast(`${errorMessage(err)} You are shown as signed out.`, 'error');
  }
  started = true;
  lastUserId = currentUser() ? currentUser().id : null;
  renderNav();
  if (currentUser()) ensureConnected();
  window.addEventListener('hashchange', route);
  route();
}

start();
