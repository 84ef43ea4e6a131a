/* cipherdesk admin pages: agents and roles, tenant settings, policy, plugins, audit log,
 * emergency panel, embed snippet. Every write goes through api() (X-CSRF-Token). */
import { api, whoami, loginForm, passwordForm, logout, toast, setUnauthenticatedHandler, setPasswordChangeHandler, fmtDate, t, I18N, languageMenu, passkeyGate, passkeysSupported, registerPasskey, passkeyError } from './common.js';
import * as governance from './governance.js';
import { qualitySection } from './quality.js';
import { e2eSection } from './e2e_admin.js';
import { rolesSection, rolePicker } from './roles.js';
import { customersSection } from './customers_admin.js';
import { ssoPanel } from './sso_admin.js';

const { h, clear } = window.CipherdeskUI;
const root = document.getElementById('app');

const SECTIONS = [
  ['agents', t('admin.nav.agents'), 'agent_manage'],
  ['roles', t('admin.nav.roles'), 'agent_manage'],
  ['tenant', t('admin.nav.tenant'), 'tenant_manage'],
  ['policy', t('admin.nav.policy'), 'policy_test'],
  ['canned', t('admin.nav.canned'), 'tenant_manage'],
  ['plugins', t('admin.nav.plugins'), 'plugin_manage'],
  ['quality', t('admin.nav.quality'), 'quality_read'],
  ['audit', t('admin.nav.audit'), 'audit_read'],
  ['alerts', t('admin.gov.alerts'), 'audit_read'],
  ['incidents', t('admin.gov.incidents'), 'emergency'],
  ['approvals', t('admin.gov.approvals'), 'chat_watch'],
  ['customers', t('admin.nav.customers'), 'tenant_manage'],
  ['tokens', t('admin.nav.tokens'), 'tenant_manage'],
  ['e2e', t('admin.nav.e2e'), 'tenant_manage'],
  ['activity', t('admin.nav.activity'), 'agent_manage'],
  ['sessions', t('admin.nav.sessions'), null],
  ['emergency', t('admin.nav.emergency'), 'emergency'],
  ['embed', t('admin.nav.embed'), null],
];

let me = null;
let main = null;
let nav = null;

const can = (p) => !p || me.permissions.includes(p);

async function boot(message) {
  me = message ? null : await whoami().catch(() => null);
  if (!me) me = await loginForm(root, { title: t('admin.login_title'), message });
  while (me.password_change_required) {
    await passwordForm(root, { forced: true });
    me = await whoami();
    if (!me) me = await loginForm(root, { title: t('admin.login_title'), message: t('common.session_ended') });
  }
  while (me.passkey_gate) me = await passkeyGate(root, me, t('admin.login_title'));
  const top = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '/admin', text: 'cipherdesk' }),
    h('span', { class: 'muted', text: t('admin.header', { tenant: me.tenant.id }) }),
    me.tenant.frozen ? h('span', { class: 'pill bad', text: t('admin.tenant_frozen') }) : null,
    h('span', { class: 'spacer' }),
    h('span', { class: 'who' }, me.agent.display_name || me.agent.email, h('span', { class: 'role', text: me.agent.custom_role || t('common.roles.' + me.role, { defaultValue: me.role }) })),
    languageMenu(),
    h('a', { class: 'btn ghost', href: '/console', text: t('console.console') }),
    h('button', { class: 'btn ghost', type: 'button', onclick: async () => { await logout(); boot(t('common.logged_out')); } }, t('common.log_out')));
  nav = h('nav', { class: 'admin-nav', 'aria-label': t('admin.sections') });
  main = h('main', { class: 'admin-main', id: 'admin-main', tabindex: '-1' });
  clear(root).append(top, h('div', { class: 'admin-layout' }, nav, main));
  route();
}

setUnauthenticatedHandler((msg) => boot(msg));
setPasswordChangeHandler(() => boot());
window.addEventListener('hashchange', () => { if (me && main) route(); });

/* Bumped on every navigation: a section's late async panels check it, so they never land
 * in the section the admin has moved on to. */
let routeGen = 0;

function route() {
  routeGen += 1;
  const allowed = SECTIONS.filter(([, , perm]) => can(perm));
  let name = location.hash.slice(1);
  if (!allowed.some(([id]) => id === name)) name = allowed[0][0];
  clear(nav);
  for (const [id, label] of allowed) {
    nav.appendChild(h('a', { href: '#' + id, 'aria-current': id === name ? 'page' : null, text: label }));
  }
  clear(main);
  // aria-busy until the section has rendered all its panels (tests and assistive
  // technology wait for it); data-section names what is shown.
  const gen = routeGen;
  main.dataset.section = name;
  main.setAttribute('aria-busy', 'true');
  const roles = () => rolesSection(main, { field, guarded, current: () => gen === routeGen });
  const customers = () => customersSection(main, { field, guarded, withApproval, lang: () => I18N.lang() });
  const render = { agents, roles, customers, tenant, policy, canned, plugins, quality, audit, alerts, incidents, approvals, tokens, e2e, activity, sessions, emergency, embed }[name];
  render().catch((e) => main.appendChild(h('p', { class: 'form-error', text: e.message })))
    .finally(() => { if (gen === routeGen) main.setAttribute('aria-busy', 'false'); });
}

function title(text, intro) {
  window.CipherdeskUI.append(main, [h('h1', { text }), intro ? h('p', { class: 'muted', text: intro }) : null]);
}

function field(id, label, input) {
  input.id = id;
  return [h('label', { for: id, text: label }), input];
}

async function guarded(button, fn) {
  button.disabled = true;
  try { return await fn(); } catch (e) { toast(e.message, 'bad'); return null; } finally { button.disabled = false; }
}

/* ------------------------------------------------------------------ agents */

async function agents() {
  title(t('admin.nav.agents'), t('admin.agents.intro'));
  const output = h('div', { id: 'agent-secret' });
  const tbody = h('tbody');
  const table = h('div', { class: 'panel' }, h('h2', { text: t('admin.agents.agents') }), h('div', { class: 'table-wrap', tabindex: '0' },
    h('table', { id: 'agents-table' }, h('thead', {}, h('tr', {}, [t('common.agent'), t('admin.agents.role'), t('admin.agents.mfa'), t('admin.agents.status'), t('admin.agents.actions')].map((x) => h('th', { text: x })))), tbody)));
  const invitesPanel = h('div', { id: 'invites' });
  main.append(invitesPanel, output, table);

  async function loadTable() {
    const [data, team, roles] = await Promise.all([api('GET', '/api/agents'), api('GET', '/api/team').catch(() => null),
      api('GET', '/api/roles').catch(() => null)]);
    const queues = team ? team.queues.map((q) => q.name) : [];
    const custom = roles ? roles.custom : [];
    clear(tbody);
    for (const a of data.agents) tbody.appendChild(agentRow(a, output, loadTable, queues, custom));
  }
  await Promise.all([loadTable(), invites(invitesPanel)]);
}

/* Invitations (issue 16.9): the admin names the address and role; the invitee opens a
 * one-time link, chooses their own password and enrols their authenticator. The admin
 * sees the link once and never any credential. */
async function invites(slot) {
  const email = h('input', { type: 'email', required: true, autocomplete: 'off' });
  const name = h('input', { maxlength: '120' });
  const role = h('select', {}, ['agent', 'supervisor', 'admin'].map((r) => h('option', { value: r, text: t('common.roles.' + r) })));
  const submit = h('button', { class: 'btn primary', type: 'submit' }, t('admin.invites.create'));
  const ttl = h('p', { class: 'small muted', id: 'invite-ttl' });
  const link = h('div', { id: 'invite-link' });
  const form = h('form', { class: 'panel', id: 'create-invite', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(submit, async () => {
      const data = await api('POST', '/api/invites', { email: email.value.trim(), role: role.value, display_name: name.value.trim() || null });
      clear(link).appendChild(h('div', { class: 'secret-box', role: 'region', 'aria-label': t('admin.invites.link_heading', { email: data.invite.email }) },
        h('div', {}, h('h3', { text: t('admin.invites.link_heading', { email: data.invite.email }) }),
          h('p', { class: 'small', text: t('admin.invites.link_once') }),
          h('p', { class: 'mono', id: 'new-invite-link', text: data.link }))));
      email.value = ''; name.value = '';
      await load();
    });
  } }, h('h2', { text: t('admin.invites.title') }), h('p', { class: 'small muted', text: t('admin.invites.intro') }),
  h('div', { class: 'grid2' },
    h('div', {}, field('invite-email', t('common.email'), email)), h('div', {}, field('invite-name', t('admin.agents.display_name'), name)),
    h('div', {}, field('invite-role', t('admin.agents.role'), role))), ttl, h('p', {}, submit));
  const tbody = h('tbody');
  const list = h('div', { class: 'panel' }, h('h2', { text: t('admin.invites.list') }), h('div', { class: 'table-wrap', tabindex: '0' },
    h('table', { id: 'invites-table' }, h('thead', {}, h('tr', {}, [t('common.agent'), t('admin.agents.role'), t('admin.invites.created_by'),
      t('admin.invites.expires'), t('admin.agents.status'), ''].map((x) => h('th', { text: x })))), tbody)));
  // The tenant's link lifetime (1-720 hours), for those who may change tenant settings.
  const hours = h('input', { type: 'number', min: '1', max: '720', required: true });
  const saveTtl = h('button', { class: 'btn', type: 'submit' }, t('common.save'));
  const ttlForm = can('tenant_manage') ? h('form', { class: 'panel', id: 'invite-ttl-form', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(saveTtl, async () => {
      await api('PATCH', '/api/tenant', { invite_ttl_hours: Number(hours.value) });
      toast(t('admin.invites.ttl_saved', { count: Number(hours.value) }));
      await load();
    });
  } }, h('div', { class: 'grid2' }, h('div', {}, field('invite-ttl-hours', t('admin.invites.ttl_label'), hours))), h('p', {}, saveTtl)) : null;
  clear(slot).append(form, link, list);
  if (ttlForm) slot.append(ttlForm);

  async function load() {
    const data = await api('GET', '/api/invites');
    ttl.textContent = t('admin.invites.expires_in', { count: data.ttl_hours });
    hours.value = String(data.ttl_hours);
    clear(tbody);
    if (!data.invites.length) tbody.appendChild(h('tr', {}, h('td', { colspan: '6', class: 'muted', text: t('admin.invites.none') })));
    for (const inv of data.invites) {
      const revoke = h('button', { class: 'btn small danger', type: 'button', hidden: inv.status !== 'pending' }, t('admin.invites.revoke'));
      revoke.addEventListener('click', () => guarded(revoke, async () => {
        if (!window.confirm(t('admin.invites.revoke_confirm', { email: inv.email }))) return;
        await api('DELETE', `/api/invites/${encodeURIComponent(inv.id)}`);
        toast(t('admin.invites.revoked', { email: inv.email }));
        await load();
      }));
      tbody.appendChild(h('tr', { 'data-invite': inv.id },
        h('td', {}, h('strong', { text: inv.display_name }), h('div', { class: 'muted small', text: inv.email })),
        h('td', { text: t('common.roles.' + inv.role, { defaultValue: inv.role }) }),
        h('td', { class: 'small', text: inv.created_by.email || inv.created_by.id }),
        h('td', { class: 'small', text: fmtDate(inv.expires_at) }),
        h('td', {}, h('span', { class: 'pill invite-status', text: t('admin.invites.status_' + inv.status) })),
        h('td', {}, revoke)));
    }
  }
  await load();
}

/* Queue scoping (issue 14.3): the queues whose waiting chats the agent sees; none
 * selected = every queue. Only offered when the tenant has queues beyond "default". */
function queueScope(a, queues, reload) {
  if (queues.length < 2) return null;
  const sel = h('select', { multiple: true, class: 'queue-scope', size: String(Math.min(queues.length, 4)),
    'aria-label': t('admin.agents.queues_of', { email: a.email }) },
  queues.map((q) => h('option', { value: q, text: q, selected: a.queues.includes(q) })));
  sel.addEventListener('change', () => guarded(sel, async () => {
    const chosen = [...sel.selectedOptions].map((o) => o.value);
    await api('PATCH', `/api/agents/${encodeURIComponent(a.id)}`, { queues: chosen });
    toast(chosen.length ? t('admin.agents.queues_set', { email: a.email, queues: I18N.list(chosen) })
      : t('admin.agents.queues_all', { email: a.email }));
    await reload();
  }));
  return h('div', { class: 'small' }, h('div', { class: 'muted', text: a.queues.length ? t('admin.agents.queues_label') : t('admin.agents.queues_none') }), sel);
}

function agentRow(a, output, reload, queues, custom) {
  const roleSel = rolePicker(a, custom || [], (body, select) => guarded(select, async () => {
    try {
      await api('PATCH', `/api/agents/${encodeURIComponent(a.id)}`, body);
    } finally {
      await reload();  // a refused change shows the agent's real role again
    }
    const role = body.custom_role || t('common.roles.' + body.role);
    toast(t('admin.agents.role_changed', { email: a.email, role }));
  }));
  const act = (label, fn, cls) => {
    const b = h('button', { class: 'btn small ' + (cls || ''), type: 'button' }, label);
    b.addEventListener('click', () => guarded(b, fn));
    return b;
  };
  const path = `/api/agents/${encodeURIComponent(a.id)}`;
  return h('tr', { 'data-agent': a.id },
    h('td', {}, h('strong', { text: a.display_name || a.email }), h('div', { class: 'muted small', text: a.email }), h('div', { class: 'mono muted', text: a.id })),
    h('td', {}, roleSel, queueScope(a, queues || [], reload)),
    h('td', { text: (a.totp_confirmed ? t('admin.agents.mfa_confirmed') : t('admin.agents.mfa_pending'))
      + (a.passkeys ? ' · ' + t('admin.agents.passkeys', { count: a.passkeys }) : '') }),
    h('td', { text: (a.disabled ? t('admin.agents.disabled') : t('admin.agents.active')) + (a.provisioned ? ' · ' + t('admin.agents.provisioned') : '') }),
    h('td', {},
      act(t('admin.agents.unlock'), async () => { const r = await api('POST', path + '/unlock'); toast(r.was_locked ? t('admin.agents.unlocked') : t('admin.agents.not_locked')); }),
      act(t('admin.agents.revoke_sessions'), async () => { const r = await api('POST', path + '/revoke-sessions'); toast(t('admin.agents.sessions_revoked', { count: r.sessions_revoked })); }),
      act(t('admin.agents.reset_mfa'), async () => {
        if (!window.confirm(t('admin.agents.reset_mfa_confirm', { email: a.email }))) return;
        const data = await api('POST', path + '/reset-mfa');
        // A one-time link for the agent: the admin never sees their new second factor.
        const heading = t('admin.agents.mfa_link_heading', { email: a.email });
        clear(output).appendChild(h('div', { class: 'secret-box', role: 'region', 'aria-label': heading },
          h('div', {}, h('h3', { text: heading }),
            h('p', { class: 'small', text: t('admin.agents.mfa_link_once', { when: I18N.dateTime(data.expires_at) }) }),
            h('p', { class: 'mono', id: 'mfa-reset-link', text: data.link }))));
        await reload();
      }),
      a.provisioned && !a.totp_confirmed && !a.disabled ? act(t('admin.agents.activation_link'), async () => {
        const data = await api('POST', path + '/activation-link');
        const heading = t('admin.agents.activation_heading', { email: a.email });
        clear(output).appendChild(h('div', { class: 'secret-box', role: 'region', 'aria-label': heading },
          h('div', {}, h('h3', { text: heading }),
            h('p', { class: 'small', text: t('admin.agents.mfa_link_once', { when: I18N.dateTime(data.expires_at) }) }),
            h('p', { class: 'mono', id: 'activation-link', text: data.link }))));
      }) : null,
      act(a.disabled ? t('admin.agents.enable') : t('admin.agents.disable'), async () => {
        await api('PATCH', path, { disabled: !a.disabled });
        await reload();
      }, a.disabled ? '' : 'danger')));
}

/* ------------------------------------------------------------------ tenant */

async function tenant() {
  const tr = I18N.t;
  title(tr('admin.nav.tenant'), tr('admin.tenant.intro'));
  const { tenant: t } = await api('GET', '/api/tenant');
  const name = h('input', { value: t.name, maxlength: '120' });
  const origins = h('textarea', { rows: '4', value: t.allowed_origins.join('\n'), spellcheck: 'false' });
  const mode = h('select', {}, ['off', 'optional', 'enforced'].map((m) => h('option', { value: m, text: tr('admin.tenant.mode_' + m), selected: m === t.identity_mode })));
  const secret = h('input', { type: 'password', autocomplete: 'off', placeholder: tr('admin.tenant.secret_placeholder') });
  const save = h('button', { class: 'btn primary', type: 'submit' }, tr('admin.tenant.save'));
  const fingerprints = h('p', { class: 'small muted', id: 'secret-fingerprints' });
  const showFingerprints = (tt) => {
    fingerprints.textContent = tt.identity_secrets.length
      ? tr('admin.tenant.fingerprints', { list: tt.identity_secrets.map((s) => s.fingerprint).join(', ') })
      : tr('admin.tenant.no_secret');
  };
  showFingerprints(t);
  const form = h('form', { class: 'panel', id: 'tenant-form', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(save, async () => {
      const body = {
        name: name.value.trim(),
        allowed_origins: origins.value.split(/\s+/).map((s) => s.trim()).filter(Boolean),
        identity_mode: mode.value,
      };
      if (secret.value) body.identity_secrets = [secret.value];
      const res = await api('PATCH', '/api/tenant', body);
      secret.value = '';
      origins.value = res.tenant.allowed_origins.join('\n');
      showFingerprints(res.tenant);
      toast(tr('admin.tenant.saved'));
    });
  } }, h('h2', { text: t.id }),
  field('tenant-name', tr('admin.tenant.name'), name),
  field('tenant-origins', tr('admin.tenant.origins'), origins),
  h('div', { class: 'grid2' },
    h('div', {}, field('tenant-mode', tr('admin.tenant.identity'), mode),
      h('p', { class: 'hint', text: tr('admin.tenant.identity_hint') })),
    h('div', {}, field('tenant-secret', tr('admin.tenant.new_secret'), secret), fingerprints)),
  h('p', {}, save));
  main.append(form);
  const gen = routeGen;
  await privacyNoticePanel();
  await ssoPanel(main, { field, guarded, withStepUp, current: () => gen === routeGen });
}

/* The privacy notice the widget shows before the first message (issue 15.3): each save
 * publishes a new version; "required" makes the gateway refuse messages until accepted. */
async function privacyNoticePanel() {
  const tr = I18N.t;
  const { current, versions } = await api('GET', '/api/tenant/privacy-notice');
  const texts = (current && current.texts) || {};
  const zh = h('textarea', { rows: '5', maxlength: '8000', value: texts['zh-CN'] || '' });
  const en = h('textarea', { rows: '5', maxlength: '8000', value: texts.en || '' });
  const required = h('input', { type: 'checkbox', id: 'notice-required', checked: !!(current && current.required) });
  const publish = h('button', { class: 'btn primary', type: 'submit' }, tr('admin.notice.publish'));
  const status = h('p', { class: 'small muted', id: 'notice-status' });
  const list = h('ul', { class: 'small', id: 'notice-versions' });
  const show = (rows) => {
    status.textContent = rows.length
      ? tr('admin.notice.current', { version: rows[0].version, when: I18N.dateTime(rows[0].created_at) })
      : tr('admin.notice.none');
    clear(list);
    rows.forEach((v) => list.append(h('li', { text: tr(v.required ? 'admin.notice.version_required' : 'admin.notice.version_optional',
      { version: v.version, when: I18N.dateTime(v.created_at), languages: v.languages.join(', ') }) })));
  };
  show(versions);
  main.append(h('form', { class: 'panel', id: 'notice-form', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(publish, async () => {
      const body = { texts: {}, required: required.checked };
      if (zh.value.trim()) body.texts['zh-CN'] = zh.value;
      if (en.value.trim()) body.texts.en = en.value;
      await api('PUT', '/api/tenant/privacy-notice', body);
      show((await api('GET', '/api/tenant/privacy-notice')).versions);
      toast(tr('admin.notice.published'));
    });
  } }, h('h2', { text: tr('admin.notice.title') }),
  h('p', { class: 'hint', text: tr('admin.notice.hint') }),
  field('notice-zh', tr('admin.notice.text_zh'), zh),
  field('notice-en', tr('admin.notice.text_en'), en),
  h('p', {}, h('label', { for: 'notice-required' }, required, ' ' + tr('admin.notice.required'))),
  h('p', {}, publish), status, list));
}

/* ------------------------------------------------------------------ policy */

async function policy() {
  title(t('admin.nav.policy'), t('admin.policy.intro'));
  const text = h('textarea', { rows: '3', placeholder: t('admin.policy.test_placeholder') });
  const dir = h('select', {}, h('option', { value: 'customer', text: t('admin.policy.from_customer') }), h('option', { value: 'agent', text: t('admin.policy.from_agent') }));
  const run = h('button', { class: 'btn primary', type: 'submit' }, t('admin.policy.test'));
  const result = h('div', { id: 'policy-result', 'aria-live': 'polite' });
  main.append(h('form', { class: 'panel', id: 'policy-test', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(run, async () => {
      const r = await api('POST', '/api/policy/test', { text: text.value, direction: dir.value });
      // CipherdeskUI.append flattens arrays and skips nulls (Element.append would print
      // "[object HTMLParagraphElement]" and "null").
      CipherdeskUI.append(clear(result), [
        h('p', {}, t('admin.policy.action') + ' ', h('span', { class: 'result-action', text: t('admin.policy.actions.' + r.action, { defaultValue: r.action || '?' }) }),
          (r.findings || []).length ? ' · ' + t('admin.policy.found', { kinds: [...new Set(r.findings.map((f) => f.kind))].join(', ') }) : ''),
        h('p', { class: 'small muted', text: t('admin.policy.delivered') }),
        r.text !== undefined && r.text !== null
          ? h('pre', { class: 'json policy-delivered', text: r.text })
          : h('p', { class: 'policy-delivered form-error', text: t('admin.policy.not_delivered') }),
        h('details', {}, h('summary', { text: t('admin.policy.full_result') }), h('pre', { class: 'json', text: JSON.stringify(r, null, 2) }))]);
    });
  } }, h('h2', { text: t('admin.policy.test_title') }), field('policy-text', t('common.message'), text), field('policy-dir', t('admin.policy.direction'), dir), h('p', {}, run), result));

  if (can('tenant_manage')) {
    const { tenant: row } = await api('GET', '/api/tenant');
    const settings = h('textarea', { rows: '12', spellcheck: 'false', class: 'mono',
      value: JSON.stringify(row.settings.policy || {}, null, 2) });
    const links = h('textarea', { rows: '3', spellcheck: 'false', value: (row.settings.allowed_link_domains || []).join('\n') });
    const save = h('button', { class: 'btn primary', type: 'submit' }, t('admin.policy.save'));
    main.append(h('form', { class: 'panel', id: 'policy-settings', onsubmit: (ev) => {
      ev.preventDefault();
      guarded(save, async () => {
        let parsed;
        try { parsed = JSON.parse(settings.value || '{}'); } catch (e) { throw new Error(t('admin.policy.bad_json', { error: e.message })); }
        await api('PATCH', '/api/tenant', { policy: parsed,
          allowed_link_domains: links.value.split(/\s+/).filter(Boolean) });
        toast(t('admin.policy.saved'));
      });
    } }, h('h2', { text: t('admin.policy.lists') }),
    h('p', { class: 'hint', text: t('admin.policy.lists_hint') }),
    field('policy-json', t('admin.policy.settings'), settings),
    field('policy-links', t('admin.policy.link_domains'), links), h('p', {}, save)));
    await policySchemaPanel();
    await keywordListsPanel();
  }
}

/* The schema carries each setting's meaning in Chinese and English: show the reader's. */
const meaning = (s) => (I18N.lang().indexOf('zh') === 0 ? s.zh : s.en);
const EFFECTIVE_COLUMNS = {
  kind: 'admin.policy_schema.col.kind', customer: 'admin.policy_schema.col.customer',
  agent: 'admin.policy_schema.col.agent', mask: 'admin.policy_schema.col.mask',
  plugin: 'admin.policy_schema.col.plugin', export: 'admin.policy_schema.col.export',
  audience_mask: 'admin.policy_schema.col.audience_mask', log: 'admin.policy_schema.col.log',
};

async function policySchemaPanel() {
  const gen = routeGen;
  const schema = await api('GET', '/api/policy/schema');
  if (gen !== routeGen) return;
  const keys = h('table', { class: 'table', id: 'policy-schema' },
    h('thead', {}, h('tr', {}, ...['admin.policy_schema.key', 'admin.policy_schema.type', 'admin.policy_schema.default', 'admin.policy_schema.meaning'].map((k) => h('th', { text: t(k) })))),
    h('tbody', {}, ...schema.settings.map((s) => h('tr', {},
      h('td', { class: 'mono', text: s.key }), h('td', { class: 'mono', text: s.type }),
      h('td', { class: 'mono', text: JSON.stringify(s.default) }), h('td', { text: meaning(s) })))));
  const cols = Object.keys(EFFECTIVE_COLUMNS);
  const table = h('table', { class: 'table', id: 'policy-effective' },
    h('thead', {}, h('tr', {}, ...cols.map((c) => h('th', { text: t(EFFECTIVE_COLUMNS[c]) })))),
    h('tbody', {}, ...schema.kinds.map((k) => h('tr', { 'data-kind': k.kind }, ...cols.map((c) => h('td', { class: c === 'kind' ? 'mono' : null, text: k[c] }))))));
  main.append(h('section', { class: 'panel' },
    h('h2', { text: t('admin.policy_schema.title') }),
    h('p', { class: 'hint', text: t('admin.policy_schema.hint') }),
    h('div', { class: 'table-wrap', tabindex: '0' }, keys),
    h('h2', { text: t('admin.policy_schema.effective_title') }),
    h('p', { class: 'hint', text: t('admin.policy_schema.effective_hint') }),
    h('div', { class: 'table-wrap', tabindex: '0' }, table)));
}

async function keywordListsPanel() {
  const gen = routeGen;
  const data = await api('GET', '/api/policy/keyword-lists');
  if (gen !== routeGen) return;
  const rows = h('tbody', {});
  for (const l of data.lists) {
    const del = h('button', { class: 'btn ghost', type: 'button', onclick: () => guarded(del, async () => {
      await api('DELETE', '/api/policy/keyword-lists/' + encodeURIComponent(l.name));
      toast(t('admin.keyword_lists.deleted')); route();
    }) }, t('admin.keyword_lists.delete'));
    rows.append(h('tr', { 'data-list': l.name }, h('td', { class: 'mono', text: l.name }),
      h('td', { text: String(l.terms) }), h('td', { text: fmtDate(l.updated_at) }), h('td', {}, del)));
  }
  const name = h('input', { type: 'text', maxlength: '40', pattern: '[a-z0-9][a-z0-9_\\-]{0,39}', required: 'required', placeholder: t('admin.keyword_lists.name_placeholder') });
  const body = h('textarea', { rows: '6', spellcheck: 'false', class: 'mono', placeholder: t('admin.keyword_lists.text_placeholder') });
  const upload = h('button', { class: 'btn primary', type: 'submit' }, t('admin.keyword_lists.upload'));
  main.append(h('form', { class: 'panel', id: 'keyword-lists', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(upload, async () => {
      const r = await api('PUT', '/api/policy/keyword-lists/' + encodeURIComponent(name.value), { text: body.value });
      toast(t('admin.keyword_lists.saved', { count: r.terms })); route();
    });
  } }, h('h2', { text: t('admin.keyword_lists.title') }),
  h('p', { class: 'hint', text: t('admin.keyword_lists.hint') + t('server.sentence_gap') + t('admin.keyword_lists.limits', {
    lists: I18N.number(data.limits.lists), bytes: I18N.number(data.limits.bytes_per_list), terms: I18N.number(data.limits.terms_per_tenant) }) }),
  h('table', { class: 'table' }, h('thead', {}, h('tr', {}, ...['admin.keyword_lists.name', 'admin.keyword_lists.terms', 'admin.keyword_lists.updated'].map((k) => h('th', { text: t(k) })), h('th'))), rows),
  field('keyword-list-name', t('admin.keyword_lists.list_name'), name), field('keyword-list-text', t('admin.keyword_lists.list_content'), body), h('p', {}, upload)));
}

/* ------------------------------------------------------------------ canned */
/* The team's canned responses (PUT /api/canned): shortcut, optional queue, text. The
 * gateway refuses a text its policy would block; the row it names is marked. */
async function canned() {
  title(t('admin.nav.canned'), t('admin.canned.intro'));
  const data = await api('GET', '/api/canned');
  const rows = h('div', { id: 'canned-rows' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const addRow = (r) => {
    const n = rows.children.length + 1;
    const shortcut = h('input', { class: 'canned-shortcut', value: r.shortcut || '/', maxlength: '33', spellcheck: 'false', 'aria-label': t('admin.canned.shortcut_n', { n }) });
    const queue = h('input', { class: 'canned-queue', value: r.queue || '', maxlength: '64', placeholder: t('admin.canned.all_queues'), 'aria-label': t('admin.canned.queue_n', { n }) });
    const text = h('textarea', { class: 'canned-text', rows: '2', maxlength: '2000', value: r.text || '', 'aria-label': t('admin.canned.text_n', { n }) });
    const row = h('div', { class: 'canned-row' }, shortcut, queue, text,
      h('button', { class: 'btn small', type: 'button', onclick: () => row.remove() }, t('admin.canned.remove')));
    rows.appendChild(row);
  };
  data.responses.forEach(addRow);
  const save = h('button', { class: 'btn primary', type: 'submit' }, t('common.save'));
  main.append(h('form', { class: 'panel', id: 'canned-form', onsubmit: (ev) => {
    ev.preventDefault();
    error.hidden = true;
    rows.querySelectorAll('.canned-row').forEach((r) => r.classList.remove('bad'));
    guarded(save, async () => {
      const responses = [...rows.querySelectorAll('.canned-row')].map((r) => {
        const item = { shortcut: r.querySelector('.canned-shortcut').value.trim(), text: r.querySelector('.canned-text').value.trim() };
        const queue = r.querySelector('.canned-queue').value.trim();
        if (queue) item.queue = queue;
        return item;
      });
      try {
        await api('PUT', '/api/canned', { responses });
        toast(t('admin.canned.saved'));
      } catch (e) {
        const row = rows.children[e.extra.index];
        if (row) row.classList.add('bad');
        const what = (e.extra.kinds || []).map((k) => (I18N.has('server.what.' + k) ? t('server.what.' + k) : k));
        error.textContent = (row ? t('admin.canned.row', { n: e.extra.index + 1 }) + t('server.sentence_gap') : '')
          + (e.code === 'canned_blocked' ? t('admin.canned.blocked', { kinds: I18N.list(what) }) : e.message);
        error.hidden = false;
      }
    });
  } }, h('p', { class: 'hint', text: t('admin.canned.hint') }), rows, error,
  h('p', {}, h('button', { class: 'btn', type: 'button', onclick: () => addRow({}) }, t('admin.canned.add')), ' ', save)));
}

/* ------------------------------------------------------------------ plugins */

async function plugins() {
  title(t('admin.nav.plugins'), t('admin.plugins.intro'));
  let data = null;
  try { data = await api('GET', '/api/plugins'); } catch (e) { data = null; }
  if (!data) {
    main.append(h('div', { class: 'panel' },
      h('h2', { text: t('admin.plugins.unavailable') }),
      h('p', { text: t('admin.plugins.unavailable_text') }),
      h('pre', { class: 'json', text: 'cipherdesk --help' })));
    return;
  }
  for (const p of data.plugins) main.appendChild(pluginForm(p));
  for (const p of data.problems || []) {
    main.appendChild(h('p', { class: 'form-error', text: t('admin.plugins.not_loaded', { name: p.name, source: p.source, reason: p.reason }) }));
  }
  await deadLetters();
}

/* One plugin: its settings form. Secret values never come back from the gateway: the
 * form only says whether each secret is set; an empty secret input keeps the stored one. */
function pluginForm(p) {
  const id = (f) => `plugin-${p.name}-${f}`;
  const tc = p.tenant_config;
  const stored = (tc && tc.config) || {};
  const secretsSet = (tc && tc.secrets_set) || [];
  const state = h('span', { class: 'muted small plugin-state', text: !tc ? t('admin.plugins.not_configured') : (tc.enabled ? t('admin.plugins.enabled_state') : t('admin.plugins.disabled_state')) });
  if (!p.installed) {
    return h('div', { class: 'panel', 'data-plugin': p.name }, h('h2', {}, p.name + ' ', state),
      h('p', { class: 'form-error', text: t('admin.plugins.not_installed') }));
  }
  const inputs = [];
  const rows = p.config_schema.map((f) => {
    const have = Object.prototype.hasOwnProperty.call(stored, f.name) ? stored[f.name] : f.default;
    let input;
    let note = null;
    if (f.secret) {
      const isSet = secretsSet.includes(f.name);
      input = h('input', { type: 'password', autocomplete: 'new-password', spellcheck: 'false',
        placeholder: isSet ? t('admin.plugins.secret_keep') : t('admin.plugins.secret_unset') });
      note = h('p', { class: 'hint secret-state', 'data-secret': f.name, text: isSet ? t('admin.plugins.secret_is_set') : t('admin.plugins.secret_not_set') });
    } else if (f.type === 'bool') {
      input = h('input', { type: 'checkbox', checked: !!have });
    } else if (f.type === 'list') {
      input = h('input', { value: (have || []).join(', '), spellcheck: 'false' });
    } else {
      input = h('input', { type: f.type === 'int' || f.type === 'float' ? 'number' : (f.type === 'url' ? 'url' : 'text'),
        step: f.type === 'float' ? 'any' : null, value: have === null || have === undefined ? '' : String(have), spellcheck: 'false' });
    }
    input.id = id(f.name);
    input.name = f.name;
    inputs.push([f, input]);
    return h('div', { class: 'field' },
      h('label', { for: input.id, text: f.name + (f.required ? ' *' : '') }), input,
      // Help texts come from the plugin (English): marked as such for screen readers.
      f.help ? h('p', { class: 'hint', lang: 'en', 'data-source': 'plugin', text: f.help + (f.choices ? ' (' + f.choices.join(', ') + ')' : '') }) : null, note);
  });
  // Ticked only when the plugin really is enabled for this tenant (not when unconfigured).
  const enabled = h('input', { type: 'checkbox', id: id('enabled'), checked: !!(tc && tc.enabled) });
  const save = h('button', { class: 'btn primary', type: 'submit' }, t('common.save'));
  const approvalSlot = h('div', { class: 'approval-slot' });
  const form = h('form', { class: 'panel plugin-form', id: 'plugin-' + p.name, 'data-plugin': p.name, onsubmit: (ev) => {
    ev.preventDefault();
    guarded(save, async () => {
      const config = {};
      for (const [f, input] of inputs) {
        if (f.type === 'bool') { config[f.name] = input.checked; continue; }
        const v = input.value.trim();
        if (!v) continue; // empty: a secret keeps its stored value, a setting its default
        if (f.type === 'list') config[f.name] = v.split(',').map((s) => s.trim()).filter(Boolean);
        else if ((f.type === 'int' || f.type === 'float') && !f.secret) config[f.name] = Number(v);
        else config[f.name] = v;
      }
      const saved = await withApproval(approvalSlot, 'plugin.identity', p.name,
        () => api('PUT', `/api/plugins/${encodeURIComponent(p.name)}`, { enabled: enabled.checked, config }));
      if (!saved) return;  // waiting for a second person's approval
      toast(t('admin.plugins.saved', { name: p.name }));
      route();
    });
  } }, h('h2', {}, p.name + ' ', state),
  h('p', { class: 'small muted' }, h('span', { lang: 'en', 'data-source': 'plugin', text: p.description || '' }),
    ` · ${t('admin.plugins.version', { version: p.version })} · ${p.source}`),
  rows,
  h('label', { class: 'check' }, enabled, ' ' + t('admin.plugins.enabled')),
  h('p', {}, save), approvalSlot);
  return form;
}

async function deadLetters() {
  const tbody = h('tbody');
  const panel = h('div', { class: 'panel', id: 'dead-letters' }, h('h2', { text: t('admin.dead.title') }),
    h('p', { class: 'hint', text: t('admin.dead.hint') }),
    h('div', { class: 'table-wrap', tabindex: '0' }, h('table', { id: 'dead-table' },
      h('thead', {}, h('tr', {}, [t('admin.dead.id'), t('admin.dead.plugin'), t('admin.dead.event'), t('admin.dead.attempts'), t('admin.dead.last_error'), t('admin.dead.created'), ''].map((x) => h('th', { text: x })))), tbody)));
  main.appendChild(panel);
  const load = async () => {
    const { dead } = await api('GET', '/api/plugins/dead');
    clear(tbody);
    if (!dead.length) tbody.appendChild(h('tr', {}, h('td', { colspan: '7', class: 'muted', text: t('admin.dead.none') })));
    for (const d of dead) {
      const replay = h('button', { class: 'btn small', type: 'button' }, t('admin.dead.replay'));
      replay.addEventListener('click', () => guarded(replay, async () => {
        await api('POST', `/api/plugins/dead/${encodeURIComponent(d.id)}/replay`);
        toast(t('admin.dead.replayed', { id: d.id }));
        await load();
      }));
      tbody.appendChild(h('tr', { 'data-dead': String(d.id) },
        h('td', { class: 'mono', text: String(d.id) }), h('td', { text: d.plugin }), h('td', { text: d.event_type }),
        h('td', { text: I18N.number(d.attempts) }), h('td', { class: 'small', text: d.last_error || '' }),
        h('td', { class: 'small', text: fmtDate(d.created_at) }), h('td', {}, replay)));
    }
  };
  await load();
}

/* ------------------------------------------------------------------ audit */

/* An audit actor/target cell: the agent's name when the id is one of ours, the id below. */
function who(id, name) {
  if (!name) return h('td', { class: 'mono', text: id || '' });
  return h('td', { class: 'audit-who' }, h('span', { text: name }), h('div', { class: 'mono muted small', text: id }));
}

async function audit() {
  title(t('admin.nav.audit'), t('admin.audit.intro'));
  const action = h('input', { placeholder: t('admin.audit.action_placeholder'), maxlength: '128' });
  const actor = h('input', { placeholder: t('admin.audit.actor_placeholder'), maxlength: '128' });
  const since = h('input', { type: 'datetime-local' });
  const until = h('input', { type: 'datetime-local' });
  const tbody = h('tbody');
  const more = h('button', { class: 'btn', type: 'button', hidden: true }, t('admin.audit.older'));
  let before = null;
  const query = () => {
    const q = new URLSearchParams({ limit: '50' });
    if (action.value.trim()) q.set('action', action.value.trim());
    if (actor.value.trim()) q.set('actor', actor.value.trim());
    if (since.value) q.set('since', String(new Date(since.value).getTime() / 1000));
    if (until.value) q.set('until', String(new Date(until.value).getTime() / 1000));
    if (before) q.set('before_id', String(before));
    return q;
  };
  const load = async (append) => {
    if (!append) { before = null; clear(tbody); }
    const data = await api('GET', '/api/audit?' + query());
    for (const e of data.events) {
      tbody.appendChild(h('tr', {},
        h('td', { class: 'small', text: fmtDate(e.ts) }), h('td', { class: 'mono', text: e.action }),
        who(e.actor, e.actor_name), who(e.target, e.target_name),
        h('td', { class: 'mono', text: e.ip || '' }),
        h('td', { class: 'mono small', text: e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : '' })));
    }
    if (!data.events.length && !append) tbody.appendChild(h('tr', {}, h('td', { colspan: '6', class: 'muted', text: t('admin.audit.none') })));
    before = data.next_before_id;
    more.hidden = !before;
  };
  more.addEventListener('click', () => guarded(more, () => load(true)));
  const apply = h('button', { class: 'btn primary', type: 'submit' }, t('admin.audit.filter'));
  main.append(
    h('form', { class: 'panel', id: 'audit-filters', onsubmit: (ev) => { ev.preventDefault(); guarded(apply, () => load(false)); } },
      h('div', { class: 'grid2' },
        h('div', {}, field('audit-action', t('admin.audit.action'), action)), h('div', {}, field('audit-actor', t('admin.audit.actor'), actor)),
        h('div', {}, field('audit-since', t('admin.audit.since'), since)), h('div', {}, field('audit-until', t('admin.audit.until'), until))),
      h('p', {}, apply)),
    h('div', { class: 'panel' }, h('div', { class: 'table-wrap', tabindex: '0' }, h('table', { id: 'audit-table' },
      h('thead', {}, h('tr', {}, [t('admin.audit.time'), t('admin.audit.action'), t('admin.audit.actor'), t('admin.audit.target'), t('admin.audit.ip'), t('admin.audit.details')].map((x) => h('th', { text: x })))), tbody)), more));
  await load(false);
  governance.auditVerifyPanel(main);
}

/* ------------------------------------------------------------------ governance */

function quality() {
  return qualitySection(main, { canTune: can('tenant_manage') });
}

function alerts() {
  return governance.alertsSection(main, { canAct: can('emergency'), canTune: can('tenant_manage') });
}

function incidents() {
  return governance.incidentsSection(main);
}

function approvals() {
  return governance.approvalsSection(main, { canConfigure: can('tenant_manage') });
}

/* ------------------------------------------------------------------ API tokens */

/* Runs fn; if the tenant's approvals gate it (403 approval_required), asks for a reason,
 * requests the grant and runs fn again once it is approved (at once in "reason" mode).
 * Resolves with fn's result, or null while a second person still has to approve. A null
 * target is the one the refusal names (a customer's, derived by the gateway). */
async function withApproval(slot, action, given, fn, { intro = 'admin.approval_needed.intro', pending = 'admin.approval_needed.pending' } = {}) {
  let target = given;
  try { return await fn(); } catch (e) {
    if (e.code !== 'approval_required') throw e;
    target = given || e.extra.target;
  }
  const reason = h('textarea', { rows: '2', maxlength: '500' });
  const go = h('button', { class: 'btn primary', type: 'submit' }, t('admin.approval_needed.request'));
  const key = String(target).replace(/[^A-Za-z0-9_-]/g, '-');
  return new Promise((resolve) => {
    const form = h('div', { class: 'step-up', role: 'group', 'aria-labelledby': 'approval-title-' + key },
      h('h3', { id: 'approval-title-' + key, text: t('admin.approval_needed.title') }),
      h('p', { class: 'small', text: t(intro) }),
      field('approval-reason-' + key, t('admin.approval_needed.reason'), reason),
      h('p', {}, go));
    go.type = 'button';
    go.addEventListener('click', () => guarded(go, async () => {
      const { grant } = await api('POST', '/api/approvals', { action, target, reason: reason.value.trim() });
      clear(slot);
      if (grant.state !== 'approved') {
        toast(t(pending));
        resolve(null);
        return;
      }
      resolve(await fn());
    }));
    clear(slot).appendChild(form);
    reason.focus();
  });
}

/* Runs fn; if the gateway wants a fresh step-up (403 reauth_required), asks for password
 * and code inline, proves them at /api/me/reauth and runs fn once more. */
async function withStepUp(slot, fn) {
  try { return await fn(); } catch (e) {
    if (e.code !== 'reauth_required') throw e;
  }
  const password = h('input', { type: 'password', required: true, autocomplete: 'current-password' });
  const otp = h('input', { required: true, inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '64' });
  const go = h('button', { class: 'btn primary', type: 'submit' }, t('admin.tokens.confirm'));
  return new Promise((resolve) => {
    const form = h('form', { class: 'panel', id: 'step-up', onsubmit: (ev) => {
      ev.preventDefault();
      guarded(go, async () => {
        await api('POST', '/api/me/reauth', { password: password.value, otp: otp.value.trim() });
        password.value = '';
        clear(slot);
        resolve(await fn());
      });
    } }, h('h3', { text: t('admin.tokens.step_up') }), h('p', { class: 'small', text: t('admin.tokens.step_up_hint') }),
    h('div', { class: 'grid2' }, h('div', {}, field('stepup-password', t('common.password'), password)),
      h('div', {}, field('stepup-otp', t('common.otp'), otp))), h('p', {}, go));
    clear(slot).appendChild(form);
    password.focus();
  });
}

async function tokens() {
  title(t('admin.nav.tokens'), t('admin.tokens.intro'));
  const output = h('div', { id: 'token-secret' });
  const name = h('input', { required: true, maxlength: '80', autocomplete: 'off' });
  const days = h('input', { type: 'number', min: '1', max: '365', value: '90', required: true });
  const perms = h('fieldset', { class: 'perm-list' }, h('legend', { text: t('admin.tokens.permissions') }));
  const submit = h('button', { class: 'btn primary', type: 'submit' }, t('admin.tokens.create'));
  const form = h('form', { class: 'panel', id: 'create-token', onsubmit: (ev) => {
    ev.preventDefault();
    const chosen = [...perms.querySelectorAll('input:checked')].map((c) => c.value);
    guarded(submit, () => withStepUp(output, async () => {
      const data = await api('POST', '/api/tokens', { name: name.value, permissions: chosen, expires_in_days: Number(days.value) });
      name.value = '';
      clear(output).appendChild(h('div', { class: 'secret-box', role: 'region', 'aria-label': t('admin.tokens.new_token') },
        h('div', {}, h('h3', { text: t('admin.tokens.new_token') }), h('p', { class: 'small', text: t('admin.tokens.shown_once') }),
          h('p', { class: 'mono', id: 'new-token-value', text: data.token }),
          h('p', { class: 'small', text: t('admin.tokens.usage_hint') }))));
      await load();
    }));
  } }, h('h2', { text: t('admin.tokens.new_token_title') }),
  h('div', { class: 'grid2' }, h('div', {}, field('token-name', t('admin.tokens.name'), name)),
    h('div', {}, field('token-days', t('admin.tokens.days'), days))), perms, h('p', {}, submit));
  const tbody = h('tbody');
  main.append(form, output, h('div', { class: 'panel' }, h('h2', { text: t('admin.tokens.list') }), h('div', { class: 'table-wrap' },
    h('table', { id: 'tokens-table' }, h('thead', {}, h('tr', {}, [t('admin.tokens.name'), t('admin.tokens.permissions'), t('admin.tokens.created_by'),
      t('admin.tokens.expires'), t('admin.tokens.last_used'), t('admin.agents.status'), ''].map((x) => h('th', { text: x })))), tbody))));

  async function load() {
    const data = await api('GET', '/api/tokens');
    if (!perms.querySelector('input')) {
      for (const p of data.grantable) {
        perms.appendChild(h('label', { class: 'check' }, h('input', { type: 'checkbox', value: p }), ' ', h('code', { text: p })));
      }
    }
    clear(tbody);
    if (!data.tokens.length) tbody.appendChild(h('tr', {}, h('td', { colspan: '7', class: 'muted', text: t('admin.tokens.none') })));
    for (const tok of data.tokens) {
      const revoke = h('button', { class: 'btn small danger', type: 'button', hidden: tok.state !== 'live' }, t('admin.tokens.revoke'));
      revoke.addEventListener('click', () => guarded(revoke, async () => {
        if (!window.confirm(t('admin.tokens.revoke_confirm', { name: tok.name }))) return;
        await api('DELETE', `/api/tokens/${encodeURIComponent(tok.id)}`);
        toast(t('admin.tokens.revoked', { name: tok.name }));
        await load();
      }));
      tbody.appendChild(h('tr', { 'data-token': tok.id },
        h('td', {}, h('strong', { text: tok.name }), h('div', { class: 'mono muted small', text: tok.id })),
        h('td', { class: 'mono small', text: tok.effective_permissions.join(' ') }),
        h('td', { class: 'small', text: tok.created_by.email || tok.created_by.id }),
        h('td', { class: 'small', text: fmtDate(tok.expires_at) }),
        h('td', { class: 'small', text: tok.last_used_at ? fmtDate(tok.last_used_at) : t('admin.tokens.never') }),
        h('td', { text: { live: t('admin.tokens.state_live'), expired: t('admin.tokens.state_expired'), revoked: t('admin.tokens.state_revoked') }[tok.state] }),
        h('td', {}, revoke)));
    }
  }
  await load();
}

/* ------------------------------------------------------------------ end-to-end (issue 13) */

async function e2e() {
  title(t('admin.nav.e2e'), t('admin.e2e.intro'));
  return e2eSection(main, { field, guarded, withStepUp });
}

/* ------------------------------------------------------------------ sessions, activity */

async function sessions() {
  title(t('admin.nav.sessions'), t('admin.sessions.intro'));
  const tbody = h('tbody');
  main.append(h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', { id: 'sessions-table' },
    h('thead', {}, h('tr', {}, [t('admin.sessions.device'), t('admin.sessions.place'), t('admin.sessions.created'), t('admin.sessions.last_use'), ''].map((x) => h('th', { text: x })))), tbody))));
  const load = async () => {
    const data = await api('GET', '/api/me/sessions');
    clear(tbody);
    for (const s of data.sessions) {
      const end = h('button', { class: 'btn small danger', type: 'button' }, t('admin.sessions.end'));
      end.addEventListener('click', () => guarded(end, async () => {
        await api('DELETE', `/api/me/sessions/${encodeURIComponent(s.id)}`);
        toast(t('admin.sessions.ended'));
        await load();
      }));
      tbody.appendChild(h('tr', { 'data-session': s.id },
        h('td', { text: s.device }), h('td', { class: 'mono', text: s.place }),
        h('td', { class: 'small', text: fmtDate(s.created_at) }), h('td', { class: 'small', text: fmtDate(s.last_seen_at) }),
        h('td', {}, s.current ? h('span', { class: 'pill', text: t('admin.sessions.current') }) : end)));
    }
  };
  await load();
  await passkeysPanel();
}

/* The agent's passkeys (issue 20.1): add one (after a step-up), see when each was last
 * used, remove one. */
async function passkeysPanel() {
  const slot = h('div');
  const list = h('tbody');
  const name = h('input', { maxlength: '64', autocomplete: 'off', value: t('common.passkey_default_name') });
  const add = h('button', { class: 'btn primary', type: 'submit', id: 'add-passkey', disabled: !passkeysSupported() }, t('common.passkey_register'));
  const form = h('form', { class: 'panel', id: 'passkeys', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(add, () => withStepUp(slot, async () => {
      try {
        await registerPasskey(name.value.trim());
      } catch (e) {
        if (e.code === 'reauth_required') throw e;
        toast(passkeyError(e, false), 'bad');
        return;
      }
      toast(t('admin.passkeys.added'));
      await load();
    }));
  } }, h('h2', { text: t('admin.passkeys.title') }),
  h('p', { class: 'small', text: t(passkeysSupported() ? 'admin.passkeys.intro' : 'common.passkey_unsupported') }),
  h('div', { class: 'table-wrap' }, h('table', { id: 'passkeys-table' }, h('thead', {}, h('tr', {},
    [t('common.passkey_name'), t('admin.sessions.created'), t('admin.sessions.last_use'), ''].map((x) => h('th', { text: x })))), list)),
  h('div', { class: 'grid2' }, h('div', {}, field('passkey-name', t('common.passkey_name'), name))), h('p', {}, add));
  main.append(form, slot);

  async function load() {
    const data = await api('GET', '/api/me/passkeys');
    clear(list);
    if (!data.passkeys.length) list.appendChild(h('tr', {}, h('td', { colspan: '4', class: 'muted', text: t('admin.passkeys.none') })));
    for (const p of data.passkeys) {
      const remove = h('button', { class: 'btn small danger', type: 'button' }, t('admin.passkeys.remove'));
      remove.addEventListener('click', () => guarded(remove, () => withStepUp(slot, async () => {
        await api('DELETE', `/api/me/passkeys/${encodeURIComponent(p.id)}`);
        toast(t('admin.passkeys.removed', { name: p.name }));
        await load();
      })));
      list.appendChild(h('tr', { 'data-passkey': p.id },
        h('td', { text: p.name }), h('td', { class: 'small', text: fmtDate(p.created_at) }),
        h('td', { class: 'small', text: p.last_used_at ? fmtDate(p.last_used_at) : t('admin.tokens.never') }),
        h('td', {}, remove)));
    }
  }
  await load();
}

async function activity() {
  title(t('admin.nav.activity'), t('admin.activity.intro'));
  const days = h('input', { type: 'number', min: '7', max: '3650' });
  const save = h('button', { class: 'btn primary', type: 'submit' }, t('common.save'));
  const tbody = h('tbody');
  const load = async () => {
    const data = await api('GET', '/api/agents/activity');
    days.value = data.dormant_disable_days === null ? '' : String(data.dormant_disable_days);
    clear(tbody);
    for (const a of data.agents) {
      tbody.appendChild(h('tr', { 'data-agent': a.id },
        h('td', { text: a.email }),
        h('td', { class: 'small', text: a.last_login_at ? fmtDate(a.last_login_at) : t('admin.tokens.never') }),
        h('td', { text: t('admin.activity.days', { count: a.idle_days }) }),
        h('td', {}, a.disabled ? h('span', { class: 'pill', text: t('admin.agents.disabled') })
          : a.dormant ? h('span', { class: 'pill bad', text: t('admin.activity.dormant') }) : t('admin.agents.active'))));
    }
  };
  const form = h('form', { class: 'panel', id: 'dormancy-form', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(save, async () => {
      await api('PUT', '/api/tenant/dormancy', { disable_after_days: days.value === '' ? null : Number(days.value) });
      toast(t('admin.activity.saved'));
      await load();
    });
  } }, h('h2', { text: t('admin.activity.rule') }), h('p', { class: 'small', text: t('admin.activity.rule_hint') }),
  field('dormancy-days', t('admin.activity.disable_after'), days), h('p', {}, save));
  main.append(form, h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', { id: 'activity-table' },
    h('thead', {}, h('tr', {}, [t('common.agent'), t('admin.activity.last_login'), t('admin.activity.unused'), t('admin.agents.status')].map((x) => h('th', { text: x })))), tbody))));
  await load();
}

/* ------------------------------------------------------------------ emergency */

async function emergency() {
  title(t('admin.nav.emergency'), t('admin.emergency.intro'));
  const { agents: list } = can('agent_manage') ? await api('GET', '/api/agents') : { agents: [] };
  const who = h('select', {}, list.map((a) => h('option', { value: a.id, text: (a.display_name || a.email) + ' — ' + a.email })));
  const revoke = h('button', { class: 'btn danger', type: 'submit' }, t('admin.emergency.revoke_all'));
  const frozen = !!me.tenant.frozen;
  const freeze = h('button', { class: 'btn ' + (frozen ? 'primary' : 'danger'), type: 'button', id: 'freeze-btn' },
    frozen ? t('admin.emergency.unfreeze') : t('admin.emergency.freeze'));
  const state = h('p', { id: 'freeze-state', role: 'status', text: frozen ? t('admin.emergency.frozen_state') : t('admin.emergency.live_state') });
  freeze.addEventListener('click', () => guarded(freeze, async () => {
    const next = !me.tenant.frozen;
    if (next && !window.confirm(t('admin.emergency.freeze_confirm'))) return;
    await api('POST', '/api/emergency/freeze', { frozen: next });
    me = await whoami();
    toast(next ? t('admin.emergency.frozen_toast') : t('admin.emergency.unfrozen_toast'));
    boot();
  }));
  const rotate = h('button', { class: 'btn danger', type: 'button', id: 'rotate-btn' }, t('admin.emergency.rotate'));
  const rotateState = h('p', { id: 'rotate-state', role: 'status', text: '' });
  rotate.addEventListener('click', () => guarded(rotate, async () => {
    if (!window.confirm(t('admin.emergency.rotate_confirm'))) return;
    const r = await api('POST', '/api/emergency/rotate-keys');
    rotateState.textContent = t('admin.emergency.rotated', { key: r.key_id, ring: I18N.number(r.keys_in_ring),
      chat: I18N.number(r.chat_keys), totp: I18N.number(r.totp_secrets), identity: I18N.number(r.identity_secrets),
      plugin: I18N.number(r.plugin_secrets) }) + (r.skipped ? ' ' + t('admin.emergency.rotate_skipped', { count: r.skipped }) : '');
    toast(r.skipped ? t('admin.emergency.rotated_partial_toast') : t('admin.emergency.rotated_toast'), r.skipped ? 'warn' : undefined);
  }));
  main.append(
    h('form', { class: 'panel danger-zone', id: 'revoke-form', onsubmit: (ev) => {
      ev.preventDefault();
      guarded(revoke, async () => {
        const r = await api('POST', `/api/agents/${encodeURIComponent(who.value)}/revoke-sessions`);
        toast(t('admin.emergency.revoked_toast', { count: r.sessions_revoked }));
      });
    } }, h('h2', { text: t('admin.emergency.revoke_title') }),
    h('p', { class: 'small', text: t('admin.emergency.revoke_hint') }),
    field('revoke-agent', t('common.agent'), who), h('p', {}, revoke)),
    h('div', { class: 'panel danger-zone', id: 'freeze-panel' }, h('h2', { text: t('admin.emergency.freeze_title') }),
      h('p', { class: 'small', text: t('admin.emergency.freeze_hint') }),
      state, h('p', {}, freeze)),
    // Master-key rotation is an installation operator's action (tenant admins get 403).
    ...((me.installation_permissions || []).includes('keys_rotate') ? [
    h('div', { class: 'panel danger-zone', id: 'rotate-panel' }, h('h2', { text: t('admin.emergency.rotate_title') }),
      h('p', { class: 'small', text: t('admin.emergency.rotate_hint') }),
      rotateState, h('p', {}, rotate))] : []));
  await governance.tenantWidePanel(main, { canReadSettings: can('tenant_manage') });
}

/* ------------------------------------------------------------------ embed */

async function embed() {
  title(t('admin.nav.embed'), t('admin.embed.intro'));
  const info = await (await fetch('/embed.json?tenant=' + encodeURIComponent(me.tenant.id))).json();
  const copy = h('button', { class: 'btn', type: 'button' }, t('admin.embed.copy'));
  copy.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(info.snippet); toast(t('admin.embed.copied')); } catch (e) { toast(t('admin.embed.copy_manually'), 'warn'); }
  });
  main.append(h('div', { class: 'panel' },
    h('pre', { class: 'snippet', id: 'embed-snippet', text: info.snippet }), copy,
    h('ul', { class: 'small' },
      h('li', {}, h('code', { text: 'data-gateway-key' }), ' ' + t('admin.embed.key_hint')),
      h('li', {}, h('code', { text: 'integrity' }), ' ' + t('admin.embed.sri_hint')),
      h('li', {}, h('code', { text: 'data-lang' }), ' ' + t('admin.embed.lang_hint')),
      h('li', {}, t('admin.embed.origins_hint')))));
}

boot();
