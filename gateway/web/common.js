/* Shared by the console and the admin pages: the JSON API client (CSRF header on
 * writes, session cookie set by the server) and the login form. The CSRF token lives in
 * memory only; after a reload it is read again from GET /api/me. */
const { h, clear } = window.CipherdeskUI;

/* The page's language was negotiated by the server (?lang=, cd_lang cookie,
 * Accept-Language) and written into <html lang>. */
export const I18N = window.CipherdeskI18n.setup(document.documentElement.lang || 'en');
export const t = I18N.t;
export const LANG_NAMES = { en: 'English', 'zh-CN': '简体中文', 'zh-TW': '繁體中文' };

/* A language menu: remembers the choice in the cd_lang cookie (read by the server when it
 * renders the page) and reloads. */
export function languageMenu() {
  const sel = h('select', { class: 'lang-menu', 'aria-label': t('common.language') },
    I18N.SUPPORTED.map((l) => h('option', { value: l, lang: l, text: LANG_NAMES[l], selected: l === I18N.lang() })));
  sel.addEventListener('change', () => {
    document.cookie = 'cd_lang=' + encodeURIComponent(sel.value) + '; path=/; max-age=31536000; SameSite=Lax';
    location.reload();
  });
  return sel;
}

let csrf = null;
let onUnauthenticated = null;
let onPasswordChangeRequired = null;

export class ApiError extends Error {
  constructor(status, code, message, extra) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra || {};
  }
}

/* Called with a message when any API call answers 401 (session expired/revoked). */
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

/* Called when any API call answers 403 password_change_required (an admin set the
 * password, or the emergency panel forced a reset): the page shows passwordForm(). */
export function setPasswordChangeHandler(fn) { onPasswordChangeRequired = fn; }

/* Adopt the CSRF token of a session the page just started (login, invite redemption). */
export function useCsrf(token) { csrf = token; }

export async function api(method, path, body) {
  const resp = await send(method, path, body);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) throw failure(resp, path, data);
  return data;
}

/* Like api(), for an answer that is a file (a PDF export): resolves with its Blob. */
export async function apiFile(method, path, body) {
  const resp = await send(method, path, body);
  if (resp.ok) return resp.blob();
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  throw failure(resp, path, data);
}

async function send(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  try {
    return await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', t('common.network_error'));
  }
}

/* The ApiError of a refused call (localised by its code), after telling the page about a
 * lost session or a required password change. */
function failure(resp, path, data) {
  const err = (data && data.error) || {};
  const key = 'server.api.' + (err.code || '');
  const text = I18N.has(key) ? t(key) : (err.message || `HTTP ${resp.status}`);
  if (resp.status === 401 && path !== '/api/login' && onUnauthenticated) {
    onUnauthenticated(t('common.session_ended'));
  }
  if (resp.status === 403 && err.code === 'password_change_required' && onPasswordChangeRequired) {
    onPasswordChangeRequired();
  }
  return new ApiError(resp.status, err.code || 'error', text, err);
}

/* The current session (agent, role, permissions, csrf) or null when logged out. */
export async function whoami() {
  try {
    const me = await api('GET', '/api/me');
    csrf = me.csrf;
    return me;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function logout() {
  try { await api('POST', '/api/logout'); } catch (e) { /* already gone */ }
  csrf = null;
}

/* Render the login form into `root`; resolves with /api/me once logged in. */
export function loginForm(root, { title, message }) {
  return new Promise((resolve) => {
    const email = h('input', { id: 'login-email', type: 'email', autocomplete: 'username', required: true });
    const password = h('input', { id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
    const otp = h('input', { id: 'login-otp', autocomplete: 'one-time-code', required: true, spellcheck: 'false' });
    const ssoError = takeSsoError();
    const shown = message || ssoError;
    const error = h('p', { class: 'form-error', role: 'alert', hidden: !shown, text: shown || '' });
    const submit = h('button', { class: 'btn primary wide', type: 'submit' }, t('common.log_in'));
    const form = h('form', { class: 'login card', 'aria-labelledby': 'login-title' },
      h('div', { class: 'login-lang' }, languageMenu()),
      h('h1', { id: 'login-title', class: 'brand-title', text: title }),
      h('p', { class: 'muted', text: t('common.login_intro') }),
      error,
      h('label', { for: 'login-email' }, t('common.email')), email,
      h('label', { for: 'login-password' }, t('common.password')), password,
      h('label', { for: 'login-otp' }, t('common.otp')), otp,
      h('p', { class: 'hint', text: t('common.lost_phone') }),
      submit,
      passkeysSupported() ? h('div', { class: 'login-alt' },
        h('span', { class: 'muted small', text: t('common.or') }),
        h('button', { class: 'btn wide', id: 'login-passkey', type: 'button', onclick: async (ev) => {
          const button = ev.currentTarget;
          button.disabled = true;
          error.hidden = true;
          try {
            await loginWithPasskey();
            resolve(await whoami());
          } catch (e) {
            error.textContent = passkeyError(e, true);
            error.hidden = false;
            button.disabled = false;
          }
        } }, t('common.passkey_login'))) : null,
      ssoBlock());
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        const res = await api('POST', '/api/login', {
          email: email.value.trim(), password: password.value, otp: otp.value.trim(),
        });
        csrf = res.csrf;
        password.value = '';
        otp.value = '';
        const me = await whoami();
        resolve(me);
      } catch (e) {
        error.textContent = e.status === 429
          ? (e.extra.retry_after ? t('common.too_many_attempts', { count: Math.ceil(e.extra.retry_after) }) : t('common.too_many_attempts_later'))
          : (e.status === 401 ? t('common.login_failed') : e.message);
        error.hidden = false;
        submit.disabled = false;
        otp.value = '';
        otp.focus();
      }
    });
    clear(root).appendChild(h('main', { class: 'center' }, form));
    email.focus();
  });
}

/* ------------------------------------------------------------------ single sign-on */

const SSO_CODE_KEY = 'cd_sso_company';

/* The reason a single sign-on came back refused (``/console?sso_error=...``), localised;
 * the query is removed so a reload does not show it again. */
function takeSsoError() {
  const params = new URLSearchParams(location.search);
  const code = params.get('sso_error');
  if (!code) return null;
  params.delete('sso_error');
  history.replaceState(null, '', location.pathname + (params.toString() ? '?' + params : '') + location.hash);
  const key = 'common.sso_errors.' + code;
  return I18N.has(key) ? t(key) : t('common.sso_errors.other');
}

/* "Sign in with your company's single sign-on": the company code (tenant id) names the
 * identity provider; the gateway redirects there. Remembered in this browser. */
function ssoBlock() {
  let saved = '';
  try { saved = localStorage.getItem(SSO_CODE_KEY) || ''; } catch (e) { saved = ''; }
  const code = h('input', { id: 'sso-company', value: saved, maxlength: '64', autocomplete: 'organization', spellcheck: 'false' });
  const go = h('button', { class: 'btn wide', id: 'sso-go', type: 'button', onclick: () => {
    const value = code.value.trim().toLowerCase();
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(value)) { code.focus(); return; }
    try { localStorage.setItem(SSO_CODE_KEY, value); } catch (e) { /* private mode */ }
    location.assign('/oidc/' + encodeURIComponent(value) + '/login');
  } }, t('common.sso_go'));
  return h('details', { class: 'login-alt sso', open: saved ? true : null },
    h('summary', { text: t('common.sso_title') }),
    h('label', { for: 'sso-company' }, t('common.sso_company')), code, go);
}

/* ------------------------------------------------------------------ passkeys (WebAuthn) */

/* The browser speaks WebAuthn with the JSON helpers (Chrome/Edge 129+, Firefox 119+,
 * Safari 18.4+); elsewhere the passkey buttons are not shown and TOTP remains. */
export function passkeysSupported() {
  return !!(window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON
    && PublicKeyCredential.parseCreationOptionsFromJSON && navigator.credentials);
}

/* A passkey login (the authenticator's PIN or biometric is the second factor): the
 * gateway answers like /api/login. */
export async function loginWithPasskey() {
  const started = await api('POST', '/api/login/passkey/options');
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(started.options),
  });
  const res = await api('POST', '/api/login/passkey', { challenge_id: started.challenge_id, credential: credential.toJSON() });
  csrf = res.csrf;
  return res;
}

/* Registers a passkey for the logged-in agent (the session needs a fresh step-up). */
export async function registerPasskey(name) {
  const started = await api('POST', '/api/me/passkeys/options');
  const credential = await navigator.credentials.create({
    publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(started.options),
  });
  return api('POST', '/api/me/passkeys', { challenge_id: started.challenge_id, credential: credential.toJSON(), name: name || '' });
}

/* A refused or cancelled ceremony in the reader's language. */
export function passkeyError(e, login) {
  if (e && (e.name === 'NotAllowedError' || e.name === 'AbortError')) return t('common.passkey_cancelled');
  if (e && e.name === 'InvalidStateError') return t('common.passkey_exists');
  if (e instanceof ApiError && e.status === 401 && login) return t('common.passkey_failed');
  return (e && e.message) || String(e);
}

/* The tenant requires a passkey session (403 passkey_enrollment_required /
 * passkey_required, see gateway/passkeys.py): enrol one now, or log in with it. */
export async function passkeyGate(root, me, title) {
  if (me.passkey_gate === 'passkey_required' || !passkeysSupported()) {
    await logout();
    return loginForm(root, { title, message: t(passkeysSupported() ? 'common.passkey_required' : 'common.passkey_unsupported') });
  }
  await new Promise((resolve) => {
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const name = h('input', { id: 'enrol-passkey-name', maxlength: '64', autocomplete: 'off', value: t('common.passkey_default_name') });
    const go = h('button', { class: 'btn primary wide', id: 'enrol-passkey', type: 'submit' }, t('common.passkey_register'));
    const form = h('form', { class: 'login card', id: 'passkey-enrolment', 'aria-labelledby': 'enrol-title' },
      h('h1', { id: 'enrol-title', class: 'brand-title', text: t('common.passkey_enrol_title') }),
      h('p', { class: 'muted', text: t('common.passkey_enrol_intro') }),
      error,
      h('label', { for: 'enrol-passkey-name' }, t('common.passkey_name')), name,
      go);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      go.disabled = true;
      error.hidden = true;
      try {
        await registerPasskey(name.value.trim());
        resolve();
      } catch (e) {
        error.textContent = e.code === 'reauth_required' ? t('common.passkey_relogin') : passkeyError(e, false);
        error.hidden = false;
        go.disabled = false;
      }
    });
    clear(root).appendChild(h('main', { class: 'center' }, form));
    name.focus();
  });
  // This session was opened with TOTP: the rule now wants a passkey session.
  await logout();
  return loginForm(root, { title, message: t('common.passkey_saved_login') });
}

/* The message for a refused new password: the server's reason code, localised. */
export function passwordError(e) {
  if (e.code === 'weak_password' && e.extra.reason && I18N.has('common.pw.weak.' + e.extra.reason)) {
    return t('common.pw.weak.' + e.extra.reason);
  }
  return e.message;
}

/* Change-password form (current, new, repeat) rendered into `root`; resolves true once
 * the server accepted the new password (the session continues, other sessions end),
 * false on cancel. `forced`: the server refuses everything else until then, so there is
 * no cancel, only log out. The server wants a recent proof of password + code for
 * credential changes (reauth_required): the form then also asks for the code and
 * re-authenticates with the current password before retrying. */
export function passwordForm(root, { forced }) {
  return new Promise((resolve) => {
    const current = h('input', { id: 'pw-current', type: 'password', autocomplete: 'current-password', required: true });
    const fresh = h('input', { id: 'pw-new', type: 'password', autocomplete: 'new-password', required: true, minlength: '12' });
    const again = h('input', { id: 'pw-confirm', type: 'password', autocomplete: 'new-password', required: true });
    const otp = h('input', { id: 'pw-otp', autocomplete: 'one-time-code', spellcheck: 'false', inputmode: 'numeric' });
    const otpRow = h('div', { hidden: true }, h('p', { class: 'hint', text: t('common.pw.code_needed') }),
      h('label', { for: 'pw-otp' }, t('common.otp')), otp);
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const submit = h('button', { class: 'btn primary wide', type: 'submit' }, t('common.pw.submit'));
    const leave = forced
      ? h('button', { class: 'btn wide', type: 'button', onclick: async () => { await logout(); location.reload(); } }, t('common.log_out'))
      : h('button', { class: 'btn wide', type: 'button', id: 'pw-cancel', onclick: () => resolve(false) }, t('common.cancel'));
    const form = h('form', { class: 'login card', id: 'password-form', 'aria-labelledby': 'pw-title' },
      h('h1', { id: 'pw-title', class: 'brand-title', text: forced ? t('common.pw.title_forced') : t('common.pw.title') }),
      forced ? h('p', { class: 'muted', text: t('common.pw.forced_intro') }) : null,
      error,
      h('label', { for: 'pw-current' }, t('common.pw.current')), current,
      h('label', { for: 'pw-new' }, t('common.pw.new')), fresh,
      h('p', { class: 'hint', text: t('common.pw.hint') }),
      h('label', { for: 'pw-confirm' }, t('common.pw.confirm')), again,
      otpRow, submit, leave);
    const fail = (text, focus) => { error.textContent = text; error.hidden = false; submit.disabled = false; (focus || current).focus(); };
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.hidden = true;
      if (fresh.value !== again.value) { fail(t('common.pw.mismatch'), again); return; }
      submit.disabled = true;
      const body = { current: current.value, new: fresh.value };
      try {
        if (!otpRow.hidden) await api('POST', '/api/me/reauth', { password: current.value, otp: otp.value.trim() });
        await api('POST', '/api/me/password', body);
      } catch (e) {
        if (e.code === 'reauth_required') { otpRow.hidden = false; fail(t('common.pw.code_needed'), otp); return; }
        if (e.code === 'reauth_failed') { otp.value = ''; fail(e.message, otp); return; }
        fail(e.code === 'weak_password' ? passwordError(e) : e.message, e.code === 'weak_password' ? fresh : current);
        return;
      }
      current.value = ''; fresh.value = ''; again.value = ''; otp.value = '';
      toast(t('common.pw.changed'));
      resolve(true);
    });
    clear(root).appendChild(h('main', { class: 'center' }, form));
    current.focus();
  });
}

/* A transient message at the bottom of the screen (role=status). */
export function toast(text, kind) {
  let box = document.getElementById('toasts');
  if (!box) {
    box = h('div', { id: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(box);
  }
  const item = h('div', { class: 'toast ' + (kind || ''), text });
  box.appendChild(item);
  setTimeout(() => item.remove(), 5000);
}

export function fmtDate(ts) {
  return I18N.dateTime(ts);
}
