/* Shared by the console and the admin pages: the JSON API client (CSRF header on
 * writes, session cookie set by the server) and the login form. The CSRF token lives in
 * memory only; after a reload it is read again from GET /api/me. */
const { h, clear } = window.CipherdeskUI;

let csrf = null;
let onUnauthenticated = null;

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

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'The gateway cannot be reached. Check your connection.');
  }
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) {
    const err = (data && data.error) || {};
    const error = new ApiError(resp.status, err.code || 'error', err.message || `HTTP ${resp.status}`, err);
    if (resp.status === 401 && path !== '/api/login' && onUnauthenticated) {
      onUnauthenticated('Your session has ended. Please log in again.');
    }
    throw error;
  }
  return data;
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
    const error = h('p', { class: 'form-error', role: 'alert', hidden: !message, text: message || '' });
    const submit = h('button', { class: 'btn primary wide', type: 'submit' }, 'Log in');
    const form = h('form', { class: 'login card', 'aria-labelledby': 'login-title' },
      h('h1', { id: 'login-title', class: 'brand-title', text: title }),
      h('p', { class: 'muted', text: 'Log in with your password and the six-digit code from your authenticator app.' }),
      error,
      h('label', { for: 'login-email' }, 'E-mail'), email,
      h('label', { for: 'login-password' }, 'Password'), password,
      h('label', { for: 'login-otp' }, 'One-time code'), otp,
      h('p', { class: 'hint', text: 'Lost your phone? Enter one of your recovery codes instead.' }),
      submit);
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
          ? `Too many attempts. Try again in ${e.extra.retry_after || 'a few'} seconds.`
          : (e.status === 401 ? 'Login failed: check your e-mail, password and code.' : e.message);
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
  if (!ts) return '';
  return new Date(ts * 1000).toLocaleString([], { dateStyle: 'short', timeStyle: 'medium' });
}
