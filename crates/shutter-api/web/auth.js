// Sign in and sign up.

import { login, register } from './api.js';
import { h, mount, field, messageBox, pageTitle, fieldErrors } from './ui.js';

function authForm({ title, fields, submitLabel, onSubmit, footer }) {
  const heading = h('h1', {}, title);
  const msg = messageBox();
  const submit = h('button', { type: 'submit', className: 'btn btn-primary' }, submitLabel);
  const form = h('form', { className: 'card auth stack', novalidate: false }, heading, ...fields, msg.el, submit, footer);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    msg.clear();
    for (const el of form.querySelectorAll('.field-error')) el.remove();
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    submit.disabled = true;
    try {
      await onSubmit(new FormData(form));
    } catch (err) {
      msg.error(err);
      // Field messages next to their inputs too.
      for (const [name, messages] of Object.entries(fieldErrors(err))) {
        const input = form.elements.namedItem(name);
        if (input && input.closest) {
          input.setAttribute('aria-invalid', 'true');
          input.closest('.field').append(h('small', { className: 'field-error' }, messages.join(' ')));
        }
      }
    } finally {
      submit.disabled = false;
    }
  });
  return { form, heading };
}

function next() {
  const want = sessionStorage.getItem('shutter.after_login');
  sessionStorage.removeItem('shutter.after_login');
  location.hash = want && !/^#\/(login|signup)/.test(want) ? want : '#/feed';
}

/** `#/login` */
export function loginView(root) {
  const { form, heading } = authForm({
    title: 'Sign in',
    submitLabel: 'Sign in',
    fields: [
      field('Username', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    ],
    footer: h('p', { className: 'muted' }, 'New here? ', h('a', { href: '#/signup' }, 'Create an account')),
    onSubmit: async (d) => {
      await login({ username: String(d.get('username')).trim().toLowerCase(), password: String(d.get('password')) });
      next();
    },
  });
  mount(root, form);
  pageTitle(heading, 'Sign in');
}

/** `#/signup` */
export function signupView(root) {
  const { form, heading } = authForm({
    title: 'Create your account',
    submitLabel: 'Sign up',
    fields: [
      field('Username', { name: 'username', autocomplete: 'username', required: true, minlength: 3, maxlength: 30, pattern: '[A-Za-z0-9_]{3,30}', autocapitalize: 'none', spellcheck: 'false' },
        { hint: '3 to 30 letters, digits or _' }),
      field('Display name (optional)', { name: 'display_name', autocomplete: 'name', maxlength: 100 }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8, maxlength: 128 },
        { hint: 'At least 8 characters' }),
    ],
    footer: h('p', { className: 'muted' }, 'Already have an account? ', h('a', { href: '#/login' }, 'Sign in')),
    onSubmit: async (d) => {
      await register({
        username: String(d.get('username')).trim().toLowerCase(),
        password: String(d.get('password')),
        display_name: String(d.get('display_name') || '').trim(),
      });
      location.hash = '#/feed';
    },
  });
  mount(root, form);
  pageTitle(heading, 'Sign up');
}
