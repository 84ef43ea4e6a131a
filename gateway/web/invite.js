/* cipherdesk invite page (issue 16.9): the invitee chooses their own password and enrols
 * their authenticator, then lands in the console, logged in. The token is in the URL
 * fragment (never sent to any server by the browser, never in a Referer); this page
 * POSTs it. The TOTP secret is shown here, to the invitee only. */
import { api, useCsrf, passwordError, t, languageMenu, fmtDate } from './common.js';

const { h, clear } = window.CipherdeskUI;
const root = document.getElementById('app');
const token = decodeURIComponent(location.hash.slice(1));

function card(...children) {
  clear(root).appendChild(h('main', { class: 'center' },
    h('div', { class: 'login card invite-card' }, h('div', { class: 'login-lang' }, languageMenu()), ...children)));
}

function refused(message) {
  card(h('h1', { class: 'brand-title', text: t('invite.heading') }),
    h('p', { class: 'form-error', role: 'alert', id: 'invite-error', text: message }),
    h('p', { class: 'hint', text: t('invite.ask_again') }));
}

function field(id, label, input) {
  input.id = id;
  return [h('label', { for: id, text: label }), input];
}

async function start() {
  if (!token) { refused(t('invite.no_token')); return; }
  let invite;
  try {
    invite = await api('POST', '/api/invite/open', { token });
  } catch (e) {
    refused(e.message);
    return;
  }
  // A re-enrolment link (an admin reset this agent's second factor): the agent proves
  // their current password instead of choosing one.
  const reset = invite.purpose === 'mfa_reset';
  const password = h('input', { type: 'password', autocomplete: reset ? 'current-password' : 'new-password', required: true, minlength: reset ? null : '12' });
  const confirm = h('input', { type: 'password', autocomplete: 'new-password', required: !reset });
  const otp = h('input', { autocomplete: 'one-time-code', inputmode: 'numeric', required: true, spellcheck: 'false' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { class: 'btn primary wide', type: 'submit' }, t('invite.submit'));
  const role = t('common.roles.' + invite.role, { defaultValue: invite.role });
  const fail = (text, focus) => { error.textContent = text; error.hidden = false; submit.disabled = false; focus.focus(); };
  const form = h('form', { id: 'invite-form', 'aria-labelledby': 'invite-title' },
    h('h1', { id: 'invite-title', class: 'brand-title', text: t(reset ? 'invite.reset_heading' : 'invite.heading') }),
    h('p', { class: 'muted', text: reset ? t('invite.reset_intro', { tenant: invite.tenant, email: invite.email })
      : t('invite.intro', { tenant: invite.tenant, role, email: invite.email }) }),
    h('p', { class: 'small muted', text: t('invite.expires', { when: fmtDate(invite.expires_at) }) }),
    error,
    h('h2', { text: t(reset ? 'invite.step_current_password' : 'invite.step_password') }),
    ...field('invite-password', t(reset ? 'invite.current_password' : 'common.pw.new'), password),
    reset ? null : h('p', { class: 'hint', text: t('common.pw.hint') }),
    ...(reset ? [] : field('invite-confirm', t('common.pw.confirm'), confirm)),
    h('h2', { text: t('invite.step_totp') }),
    h('p', { class: 'small', text: t('invite.totp_intro') }),
    h('img', { src: invite.qr_png, alt: t('invite.qr_alt'), class: 'qr' }),
    h('p', { class: 'small', text: t('invite.secret_label') }),
    h('p', { class: 'mono', id: 'invite-secret', text: invite.secret }),
    ...field('invite-otp', t('invite.code'), otp),
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    if (!reset && password.value !== confirm.value) { fail(t('common.pw.mismatch'), confirm); return; }
    submit.disabled = true;
    let done;
    try {
      done = await api('POST', '/api/invite/redeem', { token, password: password.value, enrollment: invite.enrollment, otp: otp.value.trim() });
    } catch (e) {
      if (e.code === 'weak_password') { fail(passwordError(e), password); return; }
      if (e.code === 'invalid_otp') { otp.value = ''; fail(e.message, otp); return; }
      if (e.status === 410 || e.status === 404) { refused(e.message); return; }
      fail(e.message, password);
      return;
    }
    password.value = ''; confirm.value = '';
    useCsrf(done.csrf);
    history.replaceState(null, '', location.pathname);
    card(h('h1', { class: 'brand-title', id: 'invite-done', text: t('invite.done_heading') }),
      h('p', { class: 'small', text: t('invite.recovery_intro') }),
      h('ul', { class: 'codes', id: 'recovery-codes' }, done.recovery_codes.map((c) => h('li', { class: 'mono', text: c }))),
      h('a', { class: 'btn primary wide', id: 'invite-continue', href: '/console', text: t('invite.continue') }));
  });
  card(form);
  password.focus();
}

start();
