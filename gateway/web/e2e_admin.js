/* cipherdesk admin: end-to-end mode (issue 13). The tenant's mode and certificate verify
 * key (PUT /api/e2e, fresh step-up), and every agent device key with its fingerprint and
 * state. Certificates are signed with the tenant signing key on the admin's own machine
 * (`cipherdesk e2e certify`): the gateway never holds that key, so this page cannot sign. */
import { api, toast, t, fmtDate } from './common.js';

const { h, clear } = window.CipherdeskUI;

const STATES = {
  pending: () => t('admin.e2e.state_pending'),
  certified: () => t('admin.e2e.state_certified'),
  expired: () => t('admin.e2e.state_expired'),
  revoked: () => t('admin.e2e.state_revoked'),
};

/* The command an admin runs on their own machine (a command line, not prose: the same in
 * every language). */
function certifyCommand() {
  return ['cipherdesk', 'e2e', 'certify', '--key', '<key.json>', '--url', location.origin, '--token', '<cdt_…>'].join(' ');
}

function signPolicyCommand() {
  return ['cipherdesk', 'e2e', 'sign-policy', '--key', '<key.json>', '--url', location.origin, '--token', '<cdt_…>'].join(' ');
}

/* Whether widgets run the tenant's current policy (signed), an older one, or the defaults. */
async function policyState() {
  const state = await api('GET', '/api/e2e/policy');
  if (!state.signed) return t('admin.e2e.policy_unsigned');
  const date = fmtDate(state.signed.issued);
  return state.current ? t('admin.e2e.policy_current', { date }) : t('admin.e2e.policy_stale', { date });
}

export async function e2eSection(main, { field, guarded, withStepUp }) {
  const settings = await api('GET', '/api/e2e');
  const mode = h('select', {},
    h('option', { value: 'inspect', text: t('admin.e2e.mode_inspect') }),
    h('option', { value: 'e2e', text: t('admin.e2e.mode_e2e') }));
  mode.value = settings.mode;
  const key = h('input', { class: 'mono', maxlength: '44', autocomplete: 'off', spellcheck: 'false', value: settings.verify_key || '' });
  const release = h('input', { type: 'checkbox', id: 'e2e-release' });
  release.checked = !!settings.release_transcripts;
  const slot = h('div', { id: 'e2e-stepup' });
  const save = h('button', { class: 'btn primary', type: 'submit' }, t('common.save'));
  const form = h('form', { class: 'panel', id: 'e2e-settings', onsubmit: (ev) => {
    ev.preventDefault();
    const body = { mode: mode.value, release_transcripts: release.checked };
    if (key.value.trim()) body.verify_key = key.value.trim();
    guarded(save, () => withStepUp(slot, async () => {
      const saved = await api('PUT', '/api/e2e', body);
      mode.value = saved.mode;
      toast(t('admin.e2e.saved'));
    }));
  } },
  h('h2', { text: t('admin.e2e.settings') }),
  h('p', { class: 'small muted', text: t('admin.e2e.settings_hint') }),
  h('div', { class: 'grid2' }, h('div', {}, field('e2e-mode', t('admin.e2e.mode'), mode)),
    h('div', {}, field('e2e-key', t('admin.e2e.verify_key'), key))),
  h('p', { class: 'small muted', text: t('admin.e2e.key_warning') }),
  h('p', {}, h('label', { class: 'check', for: 'e2e-release' }, release, ' ', t('admin.e2e.release'))),
  h('p', { class: 'small muted', text: t('admin.e2e.release_hint') }),
  h('p', {}, save));

  const policy = h('div', { class: 'panel', id: 'e2e-policy' },
    h('h2', { text: t('admin.e2e.policy') }),
    h('p', { class: 'small muted', text: t('admin.e2e.policy_hint') }),
    h('p', { class: 'policy-state', text: await policyState() }),
    h('pre', { class: 'mono small', text: signPolicyCommand() }));

  const tbody = h('tbody');
  const devices = h('div', { class: 'panel' },
    h('h2', { text: t('admin.e2e.devices') }),
    h('p', { class: 'small muted', text: t('admin.e2e.certify_hint') }),
    h('pre', { class: 'mono small', text: certifyCommand() }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'e2e-devices' },
      h('thead', {}, h('tr', {}, [t('admin.e2e.agent'), t('admin.e2e.device'), t('admin.e2e.fingerprint'),
        t('admin.agents.status'), t('admin.e2e.expires'), ''].map((x) => h('th', { text: x })))), tbody)));
  main.append(form, slot, policy, devices);

  async function load() {
    const data = await api('GET', '/api/e2e/devices');
    clear(tbody);
    if (!data.devices.length) tbody.appendChild(h('tr', {}, h('td', { colspan: '6', class: 'muted', text: t('admin.e2e.no_devices') })));
    for (const d of data.devices) {
      const revoke = h('button', { class: 'btn small danger', type: 'button', hidden: d.state === 'revoked' }, t('admin.e2e.revoke'));
      revoke.addEventListener('click', () => guarded(revoke, async () => {
        if (!window.confirm(t('admin.e2e.revoke_confirm', { name: d.agent_name || d.agent }))) return;
        await api('DELETE', `/api/e2e/devices/${encodeURIComponent(d.id)}`);
        toast(t('admin.e2e.revoked'));
        await load();
      }));
      tbody.appendChild(h('tr', { 'data-device': d.id },
        h('td', {}, h('strong', { text: d.agent_name || d.agent }), h('div', { class: 'small muted', text: t('common.roles.' + d.agent_role, { defaultValue: d.agent_role || '' }) })),
        h('td', {}, h('span', { text: d.name }), h('div', { class: 'mono muted small', text: d.id })),
        h('td', { class: 'mono small', text: d.fingerprint }),
        h('td', { class: 'state-' + d.state, text: STATES[d.state]() }),
        h('td', { class: 'small', text: d.expires_at ? fmtDate(d.expires_at) : '—' }),
        h('td', {}, revoke)));
    }
  }
  await load();
}
