// End-to-end test of Shutter's web app in a real browser: playwright-core driving Debian's
// chromium (no browser download). Run by scripts/web-test.sh, which starts the server; by hand:
//
//   SHUTTER_WEB_BASE_URL=http://127.0.0.1:18080 node tests/web/e2e.mjs
//
// Env: SHUTTER_WEB_BASE_URL (required), SHUTTER_WEB_SCREENSHOTS (default
// <repo>/target/web-screenshots), SHUTTER_TESTDATA (default <repo>/../shared/testdata),
// CHROMIUM (default /usr/bin/chromium), SHUTTER_WEB_SLOWMO (ms, to watch it headed:
// SHUTTER_WEB_HEADED=1). The server must run with rate limits off and a basic-tier storage
// quota under 4 MiB (the quota scenario uploads 4 MiB), as scripts/web-test.sh sets it.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const BASE = (process.env.SHUTTER_WEB_BASE_URL || '').replace(/\/+$/, '');
const SHOTS = resolve(process.env.SHUTTER_WEB_SCREENSHOTS || join(repo, 'target/web-screenshots'));
const TESTDATA = resolve(process.env.SHUTTER_TESTDATA || join(repo, '../shared/testdata'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PHOTO_1 = join(TESTDATA, 'photos/kleiber_1080x1080.jpg'); // 133 kB JPEG
const PHOTO_2 = join(TESTDATA, 'photos/onestandsout_1200x750.webp'); // 249 kB WebP
const QUOTA_FILE_SIZE = 4 * 1024 * 1024;
const PROCESSING_TIMEOUT = 120_000;

if (!BASE) {
  console.error('SHUTTER_WEB_BASE_URL is not set (e.g. http://127.0.0.1:18080); scripts/web-test.sh sets it');
  process.exit(2);
}
const ORIGIN = new URL(BASE).origin;
// The deployment's own S3 bucket, when the server stores there: private photos and downloads
// redirect to presigned URLs on it (scripts/web-test.sh sets this on S3, and only then).
const STORAGE_ORIGIN = process.env.SHUTTER_WEB_STORAGE_ORIGIN ? new URL(process.env.SHUTTER_WEB_STORAGE_ORIGIN).origin : null;
mkdirSync(SHOTS, { recursive: true });

const suffix = Date.now().toString(36).slice(-5);
const alice = { username: `alice_${suffix}`, display: 'Alice Liddell', password: 'correct horse battery' };
const bob = { username: `bob_${suffix}`, display: 'Bob Builder', password: 'staple battery horse' };
const caption = `Two photos from the forest ${suffix}`;
const commentText = `Lovely nuthatch! ${suffix}`;

let browser;
const problems = []; // requests to other hosts, CSP violations, page errors: each fails the run
const pages = [];
const state = {}; // shared between steps: post id, share link, ...
let failedStep = null;

/** Records what must not happen on a page. `csp: false` for a page that is not the app (a file
 * opened by its link: chromium's own image viewer styles it inline, which the file's
 * `default-src 'none'` refuses, by design). */
function watch(page, who, { csp = true } = {}) {
  pages.push(page);
  page.on('request', (req) => {
    const url = req.url();
    if (url.startsWith('data:') || url.startsWith('blob:')) return;
    const origin = new URL(url).origin;
    if (origin !== ORIGIN && origin !== STORAGE_ORIGIN) problems.push(`${who}: request to another host: ${req.method()} ${url}`);
  });
  page.on('console', (msg) => {
    const text = msg.text();
    if (csp && /Content Security Policy|Refused to/i.test(text)) problems.push(`${who}: CSP: ${text}`);
  });
  page.on('pageerror', (err) => problems.push(`${who}: uncaught error: ${err.message}`));
  return page;
}

async function newContext(who, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, ...options });
  // Reported by the page itself too (the console line above is chromium's wording).
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  context.on('page', (p) => watch(p, who));
  const page = await context.newPage();
  return { context, page };
}

async function shot(page, name, options = {}) {
  const path = join(SHOTS, `${name}.png`);
  // Loaded pictures, finished fades, and no passing toast over the page.
  await page.waitForFunction(() => [...document.images].every((i) => i.complete), null, { timeout: 10_000 }).catch(() => {});
  await page.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
  await page.waitForTimeout(600);
  await page.screenshot({ path, ...options });
  console.log(`# screenshot ${path}`);
}

/** One step of the story; once one fails, the later ones are skipped (they build on it). */
function step(name, fn) {
  test(name, async (t) => {
    if (failedStep) {
      t.skip(`after the failure of "${failedStep}"`);
      return;
    }
    try {
      await fn(t);
    } catch (err) {
      failedStep = name;
      const page = pages.find((p) => !p.isClosed());
      for (const p of pages) {
        if (!p.isClosed()) await p.screenshot({ path: join(SHOTS, `failure-${pages.indexOf(p)}.png`) }).catch(() => {});
      }
      if (page) console.log(`# failure screenshots in ${SHOTS}`);
      throw err;
    }
  });
}

async function signUp(page, user) {
  await page.goto(`${BASE}/#/signup`);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Display name (optional)').fill(user.display);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL(/#\/feed$/);
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

async function signIn(page, user) {
  await page.goto(`${BASE}/#/login`);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByLabel('Password').press('Enter'); // forms submit with Enter
  await page.waitForURL(/#\/feed$/);
}

/** Reloads `url` until `locator()` is visible (feeds are filled by a background job). */
async function reloadUntil(page, url, locator, timeout = 20_000) {
  const end = Date.now() + timeout;
  for (;;) {
    await page.goto(url);
    try {
      await locator().first().waitFor({ timeout: 2000 });
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
    }
  }
}

let A; let B; // {context, page}
const refreshes = { alice: 0 };
const eventStreams = { alice: 0 };

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.SHUTTER_WEB_HEADED,
    slowMo: Number(process.env.SHUTTER_WEB_SLOWMO || 0),
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  A = await newContext('alice');
  B = await newContext('bob');
  A.page.on('request', (r) => {
    if (r.url().endsWith('/v1/auth/refresh')) refreshes.alice += 1;
    if (r.url().includes('/v1/events?access_token=')) eventStreams.alice += 1;
  });
});

after(async () => {
  if (browser) await browser.close();
});

step('the app is served with a strict CSP and opens signed out on explore', async () => {
  const res = await A.page.goto(`${BASE}/`);
  assert.equal(res.status(), 200);
  const csp = res.headers()['content-security-policy'] || '';
  assert.match(csp, /script-src 'self'/, `CSP header: ${csp}`);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  await A.page.waitForURL(/#\/explore$/);
  await A.page.getByRole('heading', { name: 'Explore' }).waitFor();
  await A.page.getByRole('link', { name: 'Sign in' }).waitFor();
});

step('two users sign up', async () => {
  await signUp(A.page, alice);
  // An empty home feed offers explore.
  await A.page.getByRole('heading', { name: 'Your feed is empty' }).waitFor();
  await signUp(B.page, bob);
});

step('alice posts two photos: progress bars reach 100 %, pause and resume, the post is published', async () => {
  const page = A.page;
  await page.getByRole('link', { name: 'New post' }).click();
  await page.waitForURL(/#\/new$/);
  await page.locator('#photo-input').setInputFiles([PHOTO_1, PHOTO_2]);
  await assert.doesNotReject(page.locator('.chosen-item').nth(1).waitFor());
  assert.equal(await page.locator('.chosen-item').count(), 2);
  await page.getByLabel('Caption').fill(caption);

  // A slow uplink (~64 kB/s), so there is time to pause an upload half-way and resume it.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 64 * 1024,
  });
  await page.getByRole('button', { name: 'Share' }).click();
  const submission = page.locator('.submission').first();
  await submission.waitFor();
  state.postId = await submission.getAttribute('data-post-id');
  assert.ok(state.postId, 'the submission names its post');
  assert.equal(await submission.getAttribute('data-status'), 'pending');
  await submission.locator('.badge-pending').waitFor();

  const rows = submission.locator('.transfer');
  assert.equal(await rows.count(), 2);
  const first = rows.nth(0);
  // Pause the first photo once some bytes are on their way, then resume it.
  await page.waitForFunction((el) => {
    const p = el.querySelector('progress');
    return el.dataset.state === 'uploading' && Number(p.value) > 0 && Number(p.value) < 60;
  }, await first.elementHandle(), { timeout: 30_000 }).catch(() => {});
  const paused = (await first.getAttribute('data-state')) === 'uploading'
    && await first.getByRole('button', { name: 'Pause' }).click({ timeout: 3000 }).then(() => true, () => false);
  if (paused) {
    assert.equal(await first.getAttribute('data-state'), 'paused');
    await first.locator('.transfer-status', { hasText: 'Paused at' }).waitFor();
    const pausedAt = Number(await first.locator('progress').getAttribute('value'));
    await submission.scrollIntoViewIfNeeded();
    await shot(page, 'compose-progress'); // one photo paused part-way, the other going up
    assert.equal(await first.getAttribute('data-state'), 'paused');
    assert.ok(Number(await first.locator('progress').evaluate((p) => p.value)) <= pausedAt + 5, 'no progress while paused');
    await first.getByRole('button', { name: 'Resume' }).click();
    console.log(`# paused the first photo at ${pausedAt} % and resumed it`);
  } else {
    console.log('# the first upload finished before it could be paused; pause/resume not exercised');
  }
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

  // Both bars reach 100 %.
  await page.waitForFunction(() => {
    const bars = [...document.querySelectorAll('.submission .transfer progress')];
    return bars.length === 2 && bars.every((b) => Number(b.value) === 100);
  }, null, { timeout: 60_000 });
  for (let i = 0; i < 2; i++) {
    assert.equal(await rows.nth(i).locator('.progress-text').textContent(), '100 %');
  }
  if (!paused) await shot(page, 'compose-progress');

  // Published (the post.published event, or the poll), no longer pending.
  await page.locator(`.submission[data-status="published"]`).waitFor({ timeout: PROCESSING_TIMEOUT });
  await submission.getByText('Published.').waitFor();
  assert.equal(await submission.locator('.badge-pending').count(), 0);
  for (let i = 0; i < 2; i++) {
    await rows.nth(i).locator('.transfer-status', { hasText: 'ready' }).waitFor({ timeout: 10_000 });
  }
  assert.ok(eventStreams.alice > 0, 'the page listened to GET /v1/events');
  await shot(page, 'compose');
});

step('bob follows alice and sees the post in his feed with its photos', async () => {
  const page = B.page;
  await page.goto(`${BASE}/#/u/${alice.username}`);
  await page.getByRole('heading', { name: alice.display }).waitFor();
  const follow = page.getByRole('button', { name: 'Follow', exact: true });
  await follow.click();
  await page.getByRole('button', { name: 'Unfollow' }).waitFor();
  await page.getByText('1 follower', { exact: true }).waitFor();

  const card = () => page.locator(`article.post[data-id="${state.postId}"]`);
  await reloadUntil(page, `${BASE}/#/feed`, card);
  await card().getByText(caption).waitFor();
  // Blurhash placeholders under the photos, then the w640 variant (srcset with w1080).
  assert.equal(await card().locator('.gallery-item').count(), 2);
  assert.ok(await card().locator('canvas.photo-placeholder').count() >= 1, 'blurhash placeholder canvas');
  const img = card().locator('img.photo-img').first();
  await img.scrollIntoViewIfNeeded();
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle(), { timeout: 15_000 });
  await card().locator('.photo.loaded').first().waitFor();
  const post = await page.evaluate(async (id) => (await fetch(`/v1/posts/${id}`)).json(), state.postId);
  assert.equal(post.status, 'published');
  const src = await img.getAttribute('src');
  const srcset = await img.getAttribute('srcset');
  const w640 = new URL(post.media[0].variants.w640.url, BASE);
  const shown = new URL(src, BASE);
  // The same file and variant (the signature and its expiry differ from one answer to the next).
  assert.equal(shown.pathname, w640.pathname, 'img src is the post\'s first photo');
  assert.equal(shown.searchParams.get('variant'), 'w640', 'img src is the w640 variant');
  assert.match(src, /variant=w640/);
  assert.match(srcset, /variant=w1080/);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'feed');
});

step('bob likes and comments', async () => {
  const page = B.page;
  const card = page.locator(`article.post[data-id="${state.postId}"]`);
  const like = card.getByRole('button', { name: 'Like', exact: true });
  await like.click();
  await card.getByRole('button', { name: 'Unlike' }).waitFor();
  assert.equal(await card.getByRole('button', { name: 'Unlike' }).getAttribute('aria-pressed'), 'true');
  await card.locator('.like-count', { hasText: '1 like' }).waitFor();
  const box = card.getByLabel('Add a comment');
  await box.fill(commentText);
  await box.press('Enter');
  await card.locator('.comments.preview').getByText(commentText).waitFor();
  await card.getByText('1 comment', { exact: true }).waitFor();
  await shot(page, 'feed-liked');
});

step('alice sees the like count and the comment (after a reload: still signed in)', async () => {
  const page = A.page;
  const card = () => page.locator(`article.post[data-id="${state.postId}"]`);
  // like_count may lag by up to a second (SPEC 3): reload until it shows.
  await reloadUntil(page, `${BASE}/#/feed`, () => card().locator('.like-count', { hasText: '1 like' }));
  await page.getByRole('button', { name: 'Sign out' }).waitFor(); // the reload kept the session
  await card().getByText(commentText).waitFor();
  await card().getByRole('link', { name: '1 comment' }).click();
  await page.waitForURL(new RegExp(`#/post/${state.postId}$`));
  await page.locator('.thread .comment', { hasText: commentText }).waitFor();
  assert.match(await page.locator('.thread .comment').first().textContent(), new RegExp(bob.username));
  await shot(page, 'post');
});

step('profiles: posts grid, followers list, edit bio', async () => {
  const page = A.page;
  await page.getByRole('link', { name: 'Profile', exact: true }).click();
  await page.getByRole('heading', { name: alice.display }).waitFor();
  const tile = page.locator(`.grid a.tile[href="#/post/${state.postId}"]`);
  await tile.waitFor();
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await tile.locator('img').elementHandle());
  await page.getByRole('link', { name: '1 follower' }).click();
  await page.locator('.people').getByText(`@${bob.username}`).waitFor();
  await page.goto(`${BASE}/#/settings`);
  await page.getByLabel('Bio').fill('Birds, moss and forest paths.');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  await page.goto(`${BASE}/#/u/${alice.username}`);
  await page.getByText('Birds, moss and forest paths.').waitFor();
  await shot(page, 'profile');
});

step('my files: upload, tag, make public; the share link opens for an anonymous browser', async () => {
  const page = A.page;
  await page.getByRole('link', { name: 'My files' }).click();
  await page.getByRole('heading', { name: 'My files' }).waitFor();
  await page.locator('.usage-text', { hasText: 'used' }).waitFor();
  await page.getByLabel('Tags').first().fill('birds, e2e');
  await page.locator('#file-input').setInputFiles({ name: 'nuthatch.jpg', mimeType: 'image/jpeg', buffer: readFileSync(PHOTO_1) });
  const transfer = page.locator('.upload-card .transfer').first();
  await page.waitForFunction((el) => Number(el.querySelector('progress').value) === 100, await transfer.elementHandle(), { timeout: 30_000 });
  const row = page.locator('.files .file', { hasText: 'nuthatch.jpg' });
  await row.and(page.locator('[data-status="ready"]')).waitFor({ timeout: PROCESSING_TIMEOUT });
  await row.getByText('#e2e').waitFor({ timeout: 10_000 }).catch(async () => {
    // The tags are set once the upload exists; the list may have been drawn before.
    await page.reload();
    await page.locator('.files .file', { hasText: 'nuthatch.jpg' }).getByText('#e2e').waitFor();
  });
  const rowNow = () => page.locator('.files .file', { hasText: 'nuthatch.jpg' });
  assert.equal(await rowNow().getAttribute('data-visibility'), 'private');
  await rowNow().getByRole('button', { name: 'Make public' }).click();
  await page.locator('.files .file[data-visibility="public"]', { hasText: 'nuthatch.jpg' }).waitFor();
  await rowNow().getByRole('button', { name: 'Share link' }).click();
  const link = await page.locator('dialog input.share-link').inputValue();
  assert.match(link, /^http/);
  state.shareLink = link;
  await shot(page, 'files-share');
  await page.getByRole('button', { name: 'Done' }).click();

  // Filters: by tag finds it, by another type finds nothing.
  const filters = page.locator('form.filters');
  await filters.getByLabel('Tag').fill('e2e');
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await page.locator('.files .file', { hasText: 'nuthatch.jpg' }).waitFor();
  await filters.getByLabel('Type').selectOption('application/pdf');
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText('No files match.').waitFor();
  await filters.getByRole('button', { name: 'Clear' }).click();
  await page.locator('.files .file', { hasText: 'nuthatch.jpg' }).waitFor();

  // An anonymous browser (no session, no cookies) opens the link and gets the bytes.
  const anon = await browser.newContext();
  try {
    const anonPage = watch(await anon.newPage(), 'anonymous', { csp: false });
    const res = await anonPage.goto(link);
    assert.equal(res.status(), 200);
    const body = await res.body();
    assert.ok(body.equals(readFileSync(PHOTO_1)), 'the shared bytes are the uploaded bytes');
    await anonPage.close();
  } finally {
    await anon.close();
  }
});

step('a quota error is shown as a message', async () => {
  const page = A.page;
  await page.locator('#file-input').setInputFiles({
    name: 'too-big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(QUOTA_FILE_SIZE, 7),
  });
  const row = page.locator('.upload-card .transfer', { hasText: 'too-big.bin' });
  await row.locator('.transfer-status', { hasText: 'Your storage is full' }).waitFor({ timeout: 20_000 });
  await page.locator('.upload-card .message-error', { hasText: 'Your storage is full' }).waitFor();
  assert.equal(await row.getAttribute('data-state'), 'error');
  assert.equal(await row.getByRole('button', { name: 'Resume' }).isVisible(), false, 'a quota error is not resumable');
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'files');
});

step('new post: an unsupported type is refused before upload; a photo the server refuses shows why', async () => {
  const page = A.page;
  await page.getByRole('link', { name: 'New post' }).click();
  await page.locator('#photo-input').setInputFiles(join(TESTDATA, 'hostile/animated.gif'));
  await page.locator('.chosen-item.has-problem', { hasText: 'must be JPEG, PNG or WebP' }).waitFor();
  await page.getByRole('button', { name: 'Remove animated.gif' }).click();
  assert.equal(await page.locator('.chosen-item').count(), 0);
  // A JPEG header claiming 65000×65000 pixels: image_too_large, before any decoding.
  await page.locator('#photo-input').setInputFiles(join(TESTDATA, 'hostile/header_bomb_65000x65000.jpg'));
  await page.getByLabel('Caption').fill('Too many pixels');
  await page.getByRole('button', { name: 'Share' }).click();
  const submission = page.locator('.submission').first();
  await submission.and(page.locator('[data-status="failed"]')).waitFor({ timeout: PROCESSING_TIMEOUT });
  await submission.locator('.submission-status', { hasText: 'too many pixels' }).waitFor();
  await submission.locator('article.post .badge-failed').waitFor();
  await submission.scrollIntoViewIfNeeded();
  await shot(page, 'compose-failed');
});

step('errors read as sentences, by the problem code', async () => {
  const messages = await A.page.evaluate(async () => {
    const { errorMessage } = await import('/app/ui.js');
    const { ApiError } = await import('/app/api.js');
    const e = (o) => errorMessage(new ApiError(o));
    return {
      rate: e({ status: 429, code: 'rate_limited', retryAfter: 42, limit: { name: 'posts_per_minute', value: 10 } }),
      big: e({ status: 413, code: 'file_too_large', limit: { name: 'max_file_size', value: 104857600, actual: 209715200 } }),
      quota: e({ status: 403, code: 'quota_exceeded', limit: { name: 'storage_quota', value: 1073741824, actual: 1610612736 } }),
      type: e({ status: 415, code: 'unsupported_media_type', detail: 'post media must be image/jpeg, image/png or image/webp' }),
      uploads: e({ status: 429, code: 'too_many_uploads', limit: { name: 'max_concurrent_uploads', value: 10 } }),
      fields: e({ status: 400, code: 'validation_failed', errors: [{ field: 'username', message: 'must be 3 to 30 characters' }] }),
      net: e({ code: 'network' }),
    };
  });
  assert.match(messages.rate, /wait 42 seconds/);
  assert.match(messages.big, /limit is 100 MB and it is 200 MB/);
  assert.match(messages.quota, /Your storage is full: .*1.5 GB of your 1.0 GB/);
  assert.match(messages.type, /JPEG, PNG or WebP/);
  assert.match(messages.uploads, /10 uploads in progress/);
  assert.match(messages.fields, /Username: must be 3 to 30 characters/);
  assert.match(messages.net, /Cannot reach the server/);
});

step('phone-sized screen: bob signs in again, the feed fits in 390 px', async () => {
  const phone = await newContext('bob-phone', {
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  });
  try {
    await signIn(phone.page, bob);
    const card = phone.page.locator(`article.post[data-id="${state.postId}"]`);
    await card.waitFor();
    const img = card.locator('img.photo-img').first();
    await phone.page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle(), { timeout: 15_000 });
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling at 390 px (overflow ${overflow}px)`);
    await shot(phone.page, 'feed-phone');
    // Keyboard: the route focused the page heading; Tab goes on to the first control of the
    // page, which shows a focus ring.
    await phone.page.keyboard.press('Tab');
    const focused = await phone.page.evaluate(() => {
      const el = document.activeElement;
      return { tag: el.tagName, inMain: !!el.closest('main'), ring: getComputedStyle(el).boxShadow };
    });
    assert.ok(['A', 'BUTTON', 'INPUT'].includes(focused.tag) && focused.inMain, `focus after Tab: ${JSON.stringify(focused)}`);
    assert.notEqual(focused.ring, 'none', 'a visible focus ring');
    const cspPhone = await phone.page.evaluate(() => window.__csp);
    assert.deepEqual(cspPhone, []);
  } finally {
    await phone.context.close();
  }
});

step('the access token was refreshed before it expired; sign out ends the session', async () => {
  const page = A.page;
  // scripts/web-test.sh runs the server with 30 s access tokens: the app refreshes at 80 %
  // of that by a timer, with no page load in between.
  const ttl = Number(process.env.SHUTTER_WEB_ACCESS_TTL_SECS || 0);
  if (ttl) {
    const seen = refreshes.alice;
    const until = Date.now() + ttl * 1000 + 5000;
    while (refreshes.alice === seen && Date.now() < until) await page.waitForTimeout(500);
    assert.ok(refreshes.alice > seen, `the app refreshed its token within ${ttl} s`);
    // Still signed in and working after the refresh.
    await page.getByRole('link', { name: 'My files' }).click();
    await page.locator('.files .file', { hasText: 'nuthatch.jpg' }).waitFor();
  }
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/#\/login$/);
  await page.reload();
  await page.getByRole('link', { name: 'Sign up' }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('shutter.refresh_token')), null);
});

step('sign-up and sign-in errors are shown; bob deletes his account with his password', async () => {
  const page = B.page;
  // A taken username (another browser, signed out).
  const other = await newContext('visitor');
  try {
    await other.page.goto(`${BASE}/#/signup`);
    await other.page.getByLabel('Username').fill(alice.username.toUpperCase());
    await other.page.getByLabel('Password').fill('another password');
    await other.page.getByRole('button', { name: 'Sign up' }).click();
    await other.page.getByRole('alert').filter({ hasText: 'That username is taken' }).waitFor();
    await other.page.goto(`${BASE}/#/login`);
    await other.page.getByLabel('Username').fill(alice.username);
    await other.page.getByLabel('Password').fill('not the password');
    await other.page.getByLabel('Password').press('Enter');
    await other.page.getByRole('alert').filter({ hasText: 'Wrong username or password' }).waitFor();
  } finally {
    await other.context.close();
  }

  await page.goto(`${BASE}/#/settings`);
  await page.getByRole('button', { name: 'Delete my account…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Your password').fill('wrong password');
  await dialog.getByRole('button', { name: 'Delete my account' }).click();
  await dialog.getByText('Wrong username or password').waitFor();
  await dialog.getByLabel('Your password').fill(bob.password);
  await dialog.getByRole('button', { name: 'Delete my account' }).click();
  await page.waitForURL(/#\/login$/);
  await page.getByText('Your account has been deleted.').waitFor();
  await page.getByLabel('Username').fill(bob.username);
  await page.getByLabel('Password').fill(bob.password);
  await page.getByLabel('Password').press('Enter');
  await page.getByRole('alert').filter({ hasText: 'Wrong username or password' }).waitFor();
});

step('no request left for another host, no CSP violation, no uncaught error', async () => {
  for (const p of pages) {
    if (p.isClosed() || !p.url().startsWith(BASE + '/#')) continue;
    const csp = await p.evaluate(() => window.__csp || []);
    for (const v of csp) problems.push(`CSP violation: ${v}`);
  }
  assert.deepEqual(problems, []);
});
