// "My files": the file-upload service (SPEC 4). Usage against the quota, resumable uploads of
// any file with progress, a filterable list, and per file: rename, tags, public / private, share
// link, download, delete.

import { api, localUrl } from './api.js';
import { onEvent } from './events.js';
import {
  h, mount, field, messageBox, pageTitle, formatBytes, formatDate, toast, errorMessage, describeFailure,
  formDialog, confirmDialog, copyText, progressBar, acceptFiles,
} from './ui.js';
import { pager } from './pager.js';
import { Transfer, transfers } from './upload.js';
import { transferRow } from './transfer-view.js';

const TYPE_FILTERS = [
  ['', 'Any'], ['image/*', 'Images'], ['video/*', 'Videos'], ['audio/*', 'Audio'],
  ['application/pdf', 'PDF'], ['text/*', 'Text'], ['application/*', 'Other documents'],
];
const STATUS_FILTERS = [['', 'Any'], ['ready', 'Ready'], ['processing', 'Processing'], ['uploading', 'Uploading'], ['pending', 'Pending'], ['failed', 'Failed']];
const VISIBILITY_FILTERS = [['', 'Any'], ['public', 'Public'], ['private', 'Private']];

/** Tags typed as "a, b c" → ['a', 'b', 'c'] (lowercased, as the server stores them). */
function parseTags(text) {
  return Array.from(new Set(String(text || '').toLowerCase().split(/[\s,]+/).map((t) => t.replace(/^#/, '')).filter(Boolean)));
}

/** `#/files` */
export function filesView(root, { signal }) {
  const heading = h('h1', {}, 'My files');
  const disposers = [];
  signal.addEventListener('abort', () => disposers.forEach((d) => d()), { once: true });

  // ---- usage ----
  const usage = h('section', { className: 'card usage', 'aria-labelledby': 'usage-h' }, h('h2', { id: 'usage-h' }, 'Storage'));
  const usageBar = progressBar('Storage used');
  const usageText = h('p', { className: 'usage-text' });
  const usageMore = h('p', { className: 'muted small' });
  usage.append(usageBar.el, usageText, usageMore);
  let limits = null;
  const loadUsage = async () => {
    try {
      limits = await api('GET', '/v1/limits');
      const { storage_quota: quota, max_file_size: maxFile, max_concurrent_uploads: maxUp } = limits.limits;
      const used = limits.usage.bytes_stored;
      usageBar.bar.value = Math.min(100, Math.round((used / Math.max(1, quota)) * 100));
      usageBar.text(`${Math.min(100, Math.round((used / Math.max(1, quota)) * 100))} %`);
      usageText.textContent = `${formatBytes(used)} of ${formatBytes(quota)} used`;
      usageMore.textContent = `${limits.tier} plan · files up to ${formatBytes(maxFile)} · ${limits.usage.uploads_open} of ${maxUp} uploads open`;
      usage.classList.toggle('nearly-full', used / quota > 0.9);
    } catch (err) {
      usageText.textContent = errorMessage(err);
    }
  };
  loadUsage();

  // ---- upload ----
  const upMsg = messageBox();
  const input = h('input', { type: 'file', id: 'file-input', multiple: true, className: 'visually-hidden' });
  const pick = h('label', { htmlFor: 'file-input', className: 'btn btn-primary' }, 'Upload files');
  const visibility = field('Visibility', { name: 'visibility', value: 'private' }, { tag: 'select', options: [['private', 'Private (only you)'], ['public', 'Public (anyone with the link)']] });
  const tags = field('Tags', { name: 'tags', placeholder: 'e.g. work, receipts', autocomplete: 'off' }, { hint: 'Optional; letters, digits, - and _' });
  const transferList = h('ul', { className: 'transfers', 'aria-label': 'Uploads' });
  const zone = h('div', { className: 'dropzone' }, h('p', {}, 'Drop files here, or'), input, pick);
  const uploadCard = h('section', { className: 'card stack upload-card', 'aria-labelledby': 'upload-h' },
    h('h2', { id: 'upload-h' }, 'Upload'),
    h('div', { className: 'row wrap' }, visibility, tags),
    zone, upMsg.el, transferList);

  const showTransfer = (t) => {
    const row = transferRow(t, {
      onCancel: () => {
        row.el.remove();
        loadUsage();
      },
    });
    disposers.push(row.dispose);
    disposers.push(t.subscribe((tr) => {
      if (tr.state === 'error' && tr.error) upMsg.error(tr.error);
      if ((tr.state === 'processing' || tr.state === 'ready' || tr.state === 'failed') && !tr._listed) {
        tr._listed = true;
        reloadList();
        loadUsage();
      }
      // Its end, known from the upload (events or its poll): the row shows it too.
      if ((tr.state === 'ready' || tr.state === 'failed') && !tr._rowSettled) {
        tr._rowSettled = true;
        refreshRow(tr.fileId);
      }
    }));
    transferList.prepend(row.el);
  };

  const uploadFiles = (files) => {
    upMsg.clear();
    const vis = visibility.querySelector('select').value;
    const tagList = parseTags(tags.querySelector('input').value);
    for (const file of Array.from(files || [])) {
      if (limits && file.size > limits.limits.max_file_size) {
        upMsg.error(`${file.name} is too large: the limit is ${formatBytes(limits.limits.max_file_size)}.`);
        continue;
      }
      const t = new Transfer(file, {
        endpoint: '/v1/tus',
        metadata: { filename: file.name, content_type: file.type || 'application/octet-stream', visibility: vis },
        onCreated: tagList.length
          ? (tr) => api('PATCH', `/v1/files/${tr.fileId}`, { body: { tags: tagList } }).catch((err) => toast(`Tags of ${file.name}: ${errorMessage(err)}`, 'error'))
          : null,
      });
      t.kind = 'file';
      showTransfer(t);
      t.start();
    }
  };
  acceptFiles(zone, input, uploadFiles);

  // ---- filters ----
  const filters = h('form', { className: 'card filters', 'aria-label': 'Filter files' },
    h('div', { className: 'filter-grid' },
      field('Tag', { name: 'tag', autocomplete: 'off' }),
      field('Type', { name: 'content_type', value: '' }, { tag: 'select', options: TYPE_FILTERS }),
      field('Status', { name: 'status', value: '' }, { tag: 'select', options: STATUS_FILTERS }),
      field('Visibility', { name: 'visibility', value: '' }, { tag: 'select', options: VISIBILITY_FILTERS }),
      field('From', { name: 'from', type: 'date' }),
      field('To', { name: 'to', type: 'date' })),
    h('div', { className: 'row end' },
      h('button', { type: 'reset', className: 'btn btn-quiet' }, 'Clear'),
      h('button', { type: 'submit', className: 'btn' }, 'Apply filters')));
  let query = {};
  const readFilters = () => {
    const d = new FormData(filters);
    const q = {};
    const tag = parseTags(d.get('tag'))[0];
    if (tag) q.tag = tag;
    for (const k of ['content_type', 'status', 'visibility']) if (d.get(k)) q[k] = d.get(k);
    // Dates are whole local days; the API's bounds are exclusive instants.
    if (d.get('from')) q.created_after = new Date(new Date(`${d.get('from')}T00:00:00`).getTime() - 1).toISOString();
    if (d.get('to')) {
      const end = new Date(`${d.get('to')}T00:00:00`);
      end.setDate(end.getDate() + 1);
      q.created_before = end.toISOString();
    }
    return q;
  };
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    query = readFilters();
    reloadList();
  });
  filters.addEventListener('reset', () => {
    setTimeout(() => {
      query = {};
      reloadList();
    });
  });

  // ---- list ----
  const list = h('ul', { className: 'files', 'aria-label': 'Your files' });
  const rows = new Map(); // id -> li
  // Files that became ready or failed while their row was not shown (the list was loading
  // again, say): a row drawn from an older answer is read again.
  const settled = new Set();
  const isFinal = (status) => status === 'ready' || status === 'failed';
  const refreshRow = async (id) => {
    if (!id) return;
    try {
      const f = await api('GET', `/v1/files/${id}`);
      const li = rows.get(id);
      if (li && li.isConnected) li.replaceWith(renderFile(f));
      else settled.add(id);
    } catch {
      /* deleted meanwhile */
    }
  };
  const renderFile = (f) => {
    const li = fileRow(f, {
      onChange: (nf) => {
        const fresh = renderFile(nf);
        li.replaceWith(fresh);
      },
      onDeleted: () => {
        li.remove();
        rows.delete(f.id);
        loadUsage();
      },
    });
    rows.set(f.id, li);
    if (settled.has(f.id)) {
      settled.delete(f.id);
      if (!isFinal(f.status)) queueMicrotask(() => refreshRow(f.id));
    }
    return li;
  };
  const p = pager({
    list,
    signal,
    emptyText: 'No files match.',
    fetchPage: (cursor) => api('GET', '/v1/files', { query: { ...query, limit: 30, cursor } }),
    renderItem: renderFile,
  });
  const reloadList = () => {
    rows.clear();
    return p.reload();
  };

  // A file finished processing (or failed): show its new state.
  disposers.push(onEvent((e) => {
    if (e.file_id && (e.type === 'file.ready' || e.type === 'file.failed')) refreshRow(e.file_id);
  }));

  // Uploads started earlier on this page (the view was left and shown again); here, once the
  // list exists (their state may call for it at once).
  for (const t of transfers) if (t.kind === 'file' && t.state !== 'cancelled') showTransfer(t);

  mount(root, heading,
    h('div', { className: 'files-top' }, usage, uploadCard),
    h('h2', { id: 'list-h' }, 'Files'), filters, list, p.el);
  pageTitle(heading, 'My files');
}

function fileIcon(f) {
  const t = f.content_type || '';
  const label = t.startsWith('image/') ? 'IMG' : t.startsWith('video/') ? 'VID' : t.startsWith('audio/') ? 'AUD'
    : t === 'application/pdf' ? 'PDF' : t.startsWith('text/') ? 'TXT' : 'FILE';
  return h('span', { className: 'file-icon', 'aria-hidden': 'true' }, label);
}

function fileRow(f, { onChange, onDeleted }) {
  const thumb = f.variants && f.variants.thumb
    ? h('img', { className: 'file-thumb', src: localUrl(f.variants.thumb.url), alt: '', loading: 'lazy', width: 56, height: 56 })
    : fileIcon(f);
  const statusText = f.status === 'failed' ? `Failed: ${describeFailure(f.failure)}`
    : f.status === 'ready' ? null
      : f.status === 'processing' ? 'Processing…'
        : f.status === 'uploading' ? `Uploading (${formatBytes(f.bytes_received)} of ${formatBytes(f.size)})`
          : 'Waiting for the upload';
  const act = (label, fn, extra = {}) => h('button', { type: 'button', className: 'btn btn-small', onclick: fn, ...extra }, label);
  const patch = async (body, okText) => {
    try {
      const nf = await update(f, body);
      onChange(nf);
      if (okText) toast(okText, 'success', 2500);
      return nf;
    } catch (err) {
      toast(errorMessage(err), 'error');
      throw err;
    }
  };
  const ready = f.status === 'ready';
  const actions = h('div', { className: 'file-actions' },
    ready ? act('Download', () => download(f)) : null,
    ready ? act('Share link', () => shareLink(f, patch)) : null,
    act(f.visibility === 'public' ? 'Make private' : 'Make public',
      () => patch({ visibility: f.visibility === 'public' ? 'private' : 'public' },
        f.visibility === 'public' ? `${f.filename} is private now` : `${f.filename} is public now`).catch(() => {})),
    act('Rename', () => formDialog({
      title: `Rename ${f.filename}`,
      submitLabel: 'Rename',
      body: () => field('File name', { name: 'filename', value: f.filename, required: true, maxlength: 255 }),
      onSubmit: async (d) => {
        const nf = await update(f, { filename: String(d.get('filename')).trim() });
        onChange(nf);
      },
    })),
    act('Tags', () => formDialog({
      title: `Tags of ${f.filename}`,
      submitLabel: 'Save tags',
      body: () => field('Tags', { name: 'tags', value: f.tags.join(', '), autocomplete: 'off' }, { hint: 'Separated by commas or spaces; up to 20' }),
      onSubmit: async (d) => {
        const nf = await update(f, { tags: parseTags(d.get('tags')) });
        onChange(nf);
      },
    })),
    act('Delete', async () => {
      if (!(await confirmDialog(`Delete ${f.filename}?`, 'The file and its share link stop working for good.', { confirmLabel: 'Delete', danger: true }))) return;
      try {
        await api('DELETE', `/v1/files/${f.id}`);
        toast(`${f.filename} deleted`, 'success', 2500);
        onDeleted();
      } catch (err) {
        toast(err.code === 'conflict' ? `${f.filename} is a photo of one of your posts: delete the post instead.` : errorMessage(err), 'error');
      }
    }, { className: 'btn btn-small btn-quiet danger' }));
  return h('li', { className: 'file card', dataset: { id: f.id, status: f.status, visibility: f.visibility } },
    thumb,
    h('div', { className: 'file-main' },
      h('div', { className: 'file-name' }, f.filename),
      h('div', { className: 'muted small' },
        `${f.content_type} · ${formatBytes(f.size)} · `, h('time', { datetime: f.created_at }, formatDate(f.created_at))),
      h('div', { className: 'file-tags' },
        h('span', { className: `badge badge-${f.visibility}` }, f.visibility === 'public' ? 'Public' : 'Private'),
        f.tags.map((t) => h('span', { className: 'tag' }, `#${t}`))),
      statusText ? h('div', { className: f.status === 'failed' ? 'error-text small' : 'muted small' }, statusText) : null),
    actions);
}

/** PATCH a file; the answer is the whole File (variants too, with URLs for its new visibility). */
function update(f, body) {
  return api('PATCH', `/v1/files/${f.id}`, { body });
}

async function fresh(f) {
  // Private URLs expire (15 min by default): take a fresh one.
  return f.visibility === 'private' ? api('GET', `/v1/files/${f.id}`) : f;
}

async function download(f) {
  try {
    const nf = await fresh(f);
    const a = h('a', { href: localUrl(nf.url), download: nf.filename, className: 'visually-hidden' });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) {
    toast(errorMessage(err), 'error');
  }
}

async function shareLink(f, patch) {
  let file = f;
  if (file.visibility !== 'public') {
    const ok = await confirmDialog('Make this file public?',
      `Anyone with the link will be able to open ${file.filename}. You can make it private again at any time, which stops the link.`,
      { confirmLabel: 'Make public and copy link' });
    if (!ok) return;
    try {
      file = await patch({ visibility: 'public' });
    } catch {
      return;
    }
  }
  // The URL as the API gave it (built on the server's public URL): the one to share, whatever
  // host name this page was reached by.
  const link = new URL(file.url, location.href).href;
  const copied = await copyText(link);
  const note = h('p', { 'aria-live': 'polite' }, copied ? 'The link is copied. Anyone with it can open the file:' : 'Copy this link; anyone with it can open the file:');
  const copy = h('button', {
    type: 'button', className: 'btn btn-small',
    onclick: async () => {
      note.textContent = (await copyText(link)) ? 'Copied again.' : 'Your browser did not let the page copy: select the link and copy it.';
    },
  }, 'Copy');
  await formDialog({
    title: 'Share link',
    submitLabel: 'Done',
    cancelLabel: null,
    body: () => [
      note,
      field('Link', { name: 'link', value: link, readonly: true, className: 'share-link', onfocus: (e) => e.target.select() }),
      h('div', { className: 'row' }, copy, h('a', { href: link, target: '_blank', rel: 'noopener' }, 'Open the link')),
    ],
  });
}
