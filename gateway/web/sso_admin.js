/* cipherdesk admin: single sign-on with the company's OpenID Connect provider (issue
 * 20.2). The admin picks one of the providers the installation operator allowed, enters
 * the client id and secret (write-only) and registers the shown callback address at the
 * provider. Agents then use "Sign in with your company's single sign-on" with the
 * company code. */
import { api, toast, t } from './common.js';

const { h } = window.CipherdeskUI;

export async function ssoPanel(main, { field, guarded, withStepUp, current: stillHere }) {
  const data = await api('GET', '/api/oidc/settings');
  if (!stillHere()) return;  // the admin moved on to another section meanwhile
  const current = data.settings || {};
  const issuer = h('select', {}, data.allowed_issuers.length
    ? data.allowed_issuers.map((i) => h('option', { value: i, text: i, selected: i === current.issuer }))
    : h('option', { value: '', text: t('admin.sso.none_allowed') }));
  const clientId = h('input', { value: current.client_id || '', maxlength: '256', autocomplete: 'off', spellcheck: 'false' });
  const secret = h('input', { type: 'password', autocomplete: 'new-password', maxlength: '1024',
    placeholder: current.has_secret ? t('admin.sso.secret_kept') : '' });
  const mfa = h('input', { type: 'checkbox', checked: current.require_mfa !== false });
  const jit = h('input', { type: 'checkbox', checked: !!current.jit });
  const acr = h('input', { value: (current.acr_values || []).join(' '), maxlength: '1000', autocomplete: 'off', spellcheck: 'false' });
  const save = h('button', { class: 'btn primary', type: 'submit', disabled: !data.allowed_issuers.length }, t('admin.sso.save'));
  const stepUp = h('div', { id: 'sso-step-up' });
  const state = h('p', { class: 'small', id: 'sso-state', text: data.settings ? t('admin.sso.on', { issuer: current.issuer }) : t('admin.sso.off') });
  const form = h('form', { class: 'panel', id: 'sso-form' },
    h('h2', { text: t('admin.sso.title') }), h('p', { class: 'small muted', text: t('admin.sso.intro') }), state,
    h('p', { class: 'small' }, t('admin.sso.redirect'), ' ', h('code', { id: 'sso-redirect', text: data.redirect_uri })),
    h('div', { class: 'grid2' }, h('div', {}, field('sso-issuer', t('admin.sso.issuer'), issuer)),
      h('div', {}, field('sso-client', t('admin.sso.client_id'), clientId))),
    h('div', {}, field('sso-secret', t('admin.sso.secret'), secret)),
    h('label', { class: 'check' }, mfa, ' ', t('admin.sso.require_mfa')),
    h('div', {}, field('sso-acr', t('admin.sso.acr_values'), acr)),
    h('label', { class: 'check' }, jit, ' ', t('admin.sso.jit')),
    h('p', {}, save), stepUp);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const body = { issuer: issuer.value, client_id: clientId.value.trim(), require_mfa: mfa.checked, jit: jit.checked,
      acr_values: acr.value.split(/\s+/).filter(Boolean) };
    if (secret.value) body.client_secret = secret.value;
    // who may sign agents in is a credential: a stale session proves itself again first
    guarded(save, () => withStepUp(stepUp, async () => {
      const res = await api('PUT', '/api/oidc/settings', body);
      secret.value = '';
      secret.placeholder = t('admin.sso.secret_kept');
      state.textContent = t('admin.sso.on', { issuer: res.settings.issuer });
      toast(t('admin.sso.saved'));
    }));
  });
  main.append(form);
}
