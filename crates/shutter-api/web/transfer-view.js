// One upload as a row: name, progress bar, state in words, pause / resume / cancel buttons.
// Shared by "New post" and "My files".

import { h, formatBytes, progressBar, errorMessage, describeFailure } from './ui.js';

/**
 * `transfer`: an upload.js Transfer. `preview`: show an image thumbnail of the local file.
 * `canCancel`: offer Cancel (files); post photos are cancelled with their post instead.
 * Returns {el, dispose}.
 */
export function transferRow(transfer, { preview = false, canCancel = true, onCancel } = {}) {
  const name = transfer.file.name || 'file';
  const bar = progressBar(`Upload progress of ${name}`);
  const status = h('span', { className: 'transfer-status', 'aria-live': 'polite' });
  const pause = h('button', { type: 'button', className: 'btn btn-small', onclick: () => transfer.pause() }, 'Pause');
  const resume = h('button', { type: 'button', className: 'btn btn-small', onclick: () => transfer.resume() }, 'Resume');
  const cancel = canCancel
    ? h('button', {
        type: 'button',
        className: 'btn btn-small btn-quiet',
        onclick: async () => {
          await transfer.cancel();
          if (onCancel) onCancel(transfer);
        },
      }, 'Cancel')
    : null;
  let thumb = null;
  let objectUrl = null;
  if (preview && /^image\//.test(transfer.file.type)) {
    objectUrl = URL.createObjectURL(transfer.file);
    // A file the browser cannot show (not an image after all): no broken-image icon.
    thumb = h('img', { className: 'transfer-thumb', src: objectUrl, alt: '', onerror: (e) => (e.target.hidden = true) });
  }
  const el = h('li', { className: 'transfer', dataset: { state: transfer.state } },
    thumb,
    h('div', { className: 'transfer-main' },
      h('div', { className: 'transfer-head' },
        h('span', { className: 'transfer-name', title: name }, name),
        h('span', { className: 'transfer-size' }, formatBytes(transfer.total))),
      bar.el,
      status),
    h('div', { className: 'transfer-actions' }, pause, resume, cancel));

  const render = (t) => {
    el.dataset.state = t.state;
    if (t.fileId) el.dataset.fileId = t.fileId;
    const f = t.fraction();
    bar.set(f);
    const pct = `${Math.floor(f * 100)} %`;
    let text;
    switch (t.state) {
      case 'queued': text = 'Waiting…'; break;
      case 'uploading': text = `Uploading · ${formatBytes(Math.max(t.sent, t.serverReceived))} of ${formatBytes(t.total)}`; break;
      case 'paused': text = `Paused at ${pct}`; break;
      case 'processing': text = 'Uploaded · processing…'; break;
      case 'ready': text = 'Uploaded · ready'; break;
      case 'failed': text = `Failed: ${describeFailure(t.failure)}`; break;
      case 'error': text = errorMessage(t.error); break;
      case 'cancelled': text = 'Cancelled'; break;
      default: text = t.state;
    }
    status.textContent = text;
    status.classList.toggle('error-text', t.state === 'failed' || t.state === 'error');
    if (t.state === 'error' || t.state === 'failed') status.setAttribute('role', 'alert');
    else status.removeAttribute('role');
    pause.hidden = !t.canPause;
    resume.hidden = !t.canResume;
    if (cancel) {
      cancel.hidden = !(t.state === 'uploading' || t.state === 'paused' || t.state === 'error' || t.state === 'queued');
      cancel.textContent = t.state === 'error' && !t.canResume ? 'Remove' : 'Cancel';
    }
  };
  const unsubscribe = transfer.subscribe(render);
  return {
    el,
    dispose() {
      unsubscribe();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    },
  };
}
