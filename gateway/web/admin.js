/* cipherdesk admin pages: agents and roles, tenant settings, policy, plugins, audit log,
 * emergency panel, embed snippet. Every write goes through api() (X-CSRF-Token). */
import { api, whoami, loginForm, logout, toast, setUnauthenticatedHandler, fmtDate } from './common.js';
import * as governance from './governance.js';

const { h, clear } = window.CipherdeskUI;
const root = document.getElementById('app');

const SECTIONS = [
  ['agents', 'Agents & roles', 'agent_manage'],
  ['tenant', 'Tenant settings', 'tenant_manage'],
  ['policy', 'Policy', 'policy_test'],
  ['plugins', 'Plugins', 'plugin_manage'],
  ['audit', 'Audit log', 'audit_read'],
  ['alerts', governance.t('alerts'), 'audit_read'],
  ['incidents', governance.t('incidents'), 'emergency'],
  ['approvals', governance.t('approvals'), 'chat_watch'],
  ['emergency', 'Emergency', 'emergency'],
  ['embed', 'Embed snippet', null],
];

let me = null;
let main = null;
let nav = null;

const can = (p) => !p || me.permissions.includes(p);

async function boot(message) {
  me = message ? null : await whoami().catch(() => null);
  if (!me) me = await loginForm(root, { title: 'cipherdesk admin', message });
  const top = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '/admin', text: 'cipherdesk' }),
    h('span', { class: 'muted', text: 'Admin · tenant ' + me.tenant.id }),
    me.tenant.frozen ? h('span', { class: 'pill bad', text: 'Tenant frozen' }) : null,
    h('span', { class: 'spacer' }),
    h('span', { class: 'who' }, me.agent.display_name || me.agent.email, h('span', { class: 'role', text: me.role })),
    h('a', { class: 'btn ghost', href: '/console', text: 'Console' }),
    h('button', { class: 'btn ghost', type: 'button', onclick: async () => { await logout(); boot('You are logged out.'); } }, 'Log out'));
  nav = h('nav', { class: 'admin-nav', 'aria-label': 'Admin sections' });
  main = h('main', { class: 'admin-main', id: 'admin-main', tabindex: '-1' });
  clear(root).append(top, h('div', { class: 'admin-layout' }, nav, main));
  route();
}

setUnauthenticatedHandler((msg) => boot(msg));
window.addEventListener('hashchange', () => { if (me && main) route(); });

function route() {
  const allowed = SECTIONS.filter(([, , perm]) => can(perm));
  let name = location.hash.slice(1);
  if (!allowed.some(([id]) => id === name)) name = allowed[0][0];
  clear(nav);
  for (const [id, label] of allowed) {
    nav.appendChild(h('a', { href: '#' + id, 'aria-current': id === name ? 'page' : null, text: label }));
  }
  clear(main);
  const render = { agents, tenant, policy, plugins, audit, alerts, incidents, approvals, emergency, embed }[name];
  render().catch((e) => main.appendChild(h('p', { class: 'form-error', text: e.message })));
}

function title(text, intro) {
  main.append(h('h1', { text }), intro ? h('p', { class: 'muted', text: intro }) : null);
}

function field(id, label, input) {
  input.id = id;
  return [h('label', { for: id, text: label }), input];
}

async function guarded(button, fn) {
  button.disabled = true;
  try { return await fn(); } catch (e) { toast(e.message, 'bad'); return null; } finally { button.disabled = false; }
}

/* Shows a one-time secret (otpauth URI, QR, recovery codes) — never stored anywhere. */
function secretBox(data, heading) {
  return h('div', { class: 'secret-box', role: 'region', 'aria-label': heading },
    data.qr_png ? h('img', { src: data.qr_png, alt: 'QR code for the authenticator app', class: 'qr' }) : null,
    h('div', {},
      h('h3', { text: heading }),
      h('p', { class: 'small', text: 'Shown once. Scan the QR code with an authenticator app, or enter the URI. The agent confirms it with their first login.' }),
      h('p', { class: 'mono otpauth', text: data.otpauth_uri }),
      data.recovery_codes ? [h('p', { class: 'small', text: 'Recovery codes (single use):' }),
        h('ul', { class: 'codes' }, data.recovery_codes.map((c) => h('li', { text: c })))] : null));
}

/* ------------------------------------------------------------------ agents */

async function agents() {
  title('Agents & roles', 'Create agents, change roles, unlock, revoke sessions, reset MFA.');
  const output = h('div', { id: 'agent-secret' });
  const email = h('input', { type: 'email', required: true, autocomplete: 'off' });
  const name = h('input', { maxlength: '120' });
  const role = h('select', {}, ['agent', 'supervisor', 'admin'].map((r) => h('option', { value: r, text: r })));
  const password = h('input', { type: 'password', required: true, autocomplete: 'new-password', minlength: '12' });
  const submit = h('button', { class: 'btn primary', type: 'submit' }, 'Create agent');
  const form = h('form', { class: 'panel', id: 'create-agent', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(submit, async () => {
      const data = await api('POST', '/api/agents', {
        email: email.value.trim(), role: role.value, password: password.value,
        display_name: name.value.trim() || null,
      });
      password.value = '';
      clear(output).appendChild(secretBox(data, 'New agent ' + data.agent.email));
      email.value = ''; name.value = '';
      await loadTable();
    });
  } }, h('h2', { text: 'New agent' }),
  h('div', { class: 'grid2' },
    h('div', {}, field('new-email', 'E-mail', email)), h('div', {}, field('new-name', 'Display name', name)),
    h('div', {}, field('new-role', 'Role', role)), h('div', {}, field('new-password', 'Initial password (12+ characters)', password))),
  h('p', {}, submit));
  const tbody = h('tbody');
  const table = h('div', { class: 'panel' }, h('h2', { text: 'Agents' }), h('div', { class: 'table-wrap' },
    h('table', { id: 'agents-table' }, h('thead', {}, h('tr', {}, ['Agent', 'Role', 'MFA', 'Status', 'Actions'].map((t) => h('th', { text: t })))), tbody)));
  main.append(form, output, table);

  async function loadTable() {
    const data = await api('GET', '/api/agents');
    clear(tbody);
    for (const a of data.agents) tbody.appendChild(agentRow(a, output, loadTable));
  }
  await loadTable();
}

function agentRow(a, output, reload) {
  const roleSel = h('select', { 'aria-label': 'Role of ' + a.email }, ['agent', 'supervisor', 'admin'].map((r) => h('option', { value: r, text: r, selected: r === a.role })));
  roleSel.addEventListener('change', () => guarded(roleSel, async () => {
    await api('PATCH', `/api/agents/${encodeURIComponent(a.id)}`, { role: roleSel.value });
    toast(`${a.email} is now ${roleSel.value}; their sessions were ended.`);
    await reload();
  }));
  const act = (label, fn, cls) => {
    const b = h('button', { class: 'btn small ' + (cls || ''), type: 'button' }, label);
    b.addEventListener('click', () => guarded(b, fn));
    return b;
  };
  const path = `/api/agents/${encodeURIComponent(a.id)}`;
  return h('tr', { 'data-agent': a.id },
    h('td', {}, h('strong', { text: a.display_name || a.email }), h('div', { class: 'muted small', text: a.email }), h('div', { class: 'mono muted', text: a.id })),
    h('td', {}, roleSel),
    h('td', { text: a.totp_confirmed ? 'confirmed' : 'pending' }),
    h('td', { text: a.disabled ? 'disabled' : 'active' }),
    h('td', {},
      act('Unlock', async () => { const r = await api('POST', path + '/unlock'); toast(r.was_locked ? 'Unlocked.' : 'The account was not locked.'); }),
      act('Revoke sessions', async () => { const r = await api('POST', path + '/revoke-sessions'); toast(`${r.sessions_revoked} session(s) revoked.`); }),
      act('Reset MFA', async () => {
        if (!window.confirm(`Reset MFA for ${a.email}? Their sessions end and they need the new code.`)) return;
        const data = await api('POST', path + '/reset-mfa');
        clear(output).appendChild(secretBox(data, 'New MFA for ' + a.email));
        await reload();
      }),
      act(a.disabled ? 'Enable' : 'Disable', async () => {
        await api('PATCH', path, { disabled: !a.disabled });
        await reload();
      }, a.disabled ? '' : 'danger')));
}

/* ------------------------------------------------------------------ tenant */

async function tenant() {
  title('Tenant settings', 'Which sites may embed the widget, and how customers are identified.');
  const { tenant: t } = await api('GET', '/api/tenant');
  const name = h('input', { value: t.name, maxlength: '120' });
  const origins = h('textarea', { rows: '4', value: t.allowed_origins.join('\n'), spellcheck: 'false' });
  const mode = h('select', {}, ['off', 'optional', 'enforced'].map((m) => h('option', { value: m, text: m, selected: m === t.identity_mode })));
  const secret = h('input', { type: 'password', autocomplete: 'off', placeholder: 'leave empty to keep the current secret(s)' });
  const save = h('button', { class: 'btn primary', type: 'submit' }, 'Save settings');
  const fingerprints = h('p', { class: 'small muted', id: 'secret-fingerprints' });
  const showFingerprints = (tt) => {
    fingerprints.textContent = tt.identity_secrets.length
      ? 'Current secret fingerprints: ' + tt.identity_secrets.map((s) => s.fingerprint).join(', ')
      : 'No identity secret set.';
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
      toast('Tenant settings saved.');
    });
  } }, h('h2', { text: t.id }),
  field('tenant-name', 'Name', name),
  field('tenant-origins', 'Allowed origins (one per line, e.g. https://shop.example.com)', origins),
  h('div', { class: 'grid2' },
    h('div', {}, field('tenant-mode', 'Customer identity', mode),
      h('p', { class: 'hint', text: 'off: anonymous · optional: verified badge when the site signs the customer · enforced: signed customers only.' })),
    h('div', {}, field('tenant-secret', 'New identity secret (HS256, 32+ bytes)', secret), fingerprints)),
  h('p', {}, save));
  main.append(form);
}

/* ------------------------------------------------------------------ policy */

async function policy() {
  title('Policy', 'Sensitive words, personal data and links, applied to every message in both directions.');
  const text = h('textarea', { rows: '3', placeholder: 'Type a message to test, e.g. my card is 4111 1111 1111 1111' });
  const dir = h('select', {}, h('option', { value: 'customer', text: 'from a customer' }), h('option', { value: 'agent', text: 'from an agent' }));
  const run = h('button', { class: 'btn primary', type: 'submit' }, 'Test message');
  const result = h('div', { id: 'policy-result', 'aria-live': 'polite' });
  main.append(h('form', { class: 'panel', id: 'policy-test', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(run, async () => {
      const r = await api('POST', '/api/policy/test', { text: text.value, direction: dir.value });
      clear(result).append(
        h('p', {}, 'Action: ', h('span', { class: 'result-action', text: r.action || '?' }),
          (r.findings || []).length ? ' · found: ' + [...new Set(r.findings.map((f) => f.kind))].join(', ') : ''),
        r.text !== undefined && r.text !== null ? [h('p', { class: 'small muted', text: 'Delivered text:' }), h('pre', { class: 'json', text: r.text })] : null,
        h('details', {}, h('summary', { text: 'Full result' }), h('pre', { class: 'json', text: JSON.stringify(r, null, 2) })));
    });
  } }, h('h2', { text: 'Test a message' }), field('policy-text', 'Message', text), field('policy-dir', 'Direction', dir), h('p', {}, run), result));

  if (can('tenant_manage')) {
    const { tenant: t } = await api('GET', '/api/tenant');
    const settings = h('textarea', { rows: '12', spellcheck: 'false', class: 'mono',
      value: JSON.stringify(t.settings.policy || {}, null, 2) });
    const links = h('textarea', { rows: '3', spellcheck: 'false', value: (t.settings.allowed_link_domains || []).join('\n') });
    const save = h('button', { class: 'btn primary', type: 'submit' }, 'Save policy');
    main.append(h('form', { class: 'panel', id: 'policy-settings', onsubmit: (ev) => {
      ev.preventDefault();
      guarded(save, async () => {
        let parsed;
        try { parsed = JSON.parse(settings.value || '{}'); } catch (e) { throw new Error('The policy is not valid JSON: ' + e.message); }
        await api('PATCH', '/api/tenant', { policy: parsed,
          allowed_link_domains: links.value.split(/\s+/).filter(Boolean) });
        toast('Policy saved.');
      });
    } }, h('h2', { text: 'Policy lists' }),
    h('p', { class: 'hint', text: 'Tenant overrides (JSON): keyword lists, PII actions, link rules. Invalid settings are refused by the gateway.' }),
    field('policy-json', 'Policy settings', settings),
    field('policy-links', 'Allowed link domains (one per line)', links), h('p', {}, save)));
  }
}

/* ------------------------------------------------------------------ plugins */

async function plugins() {
  title('Plugins', 'Helpdesk integrations (signed webhook, Zendesk, Freshdesk) receive masked events through a durable outbox.');
  let data = null;
  try { data = await api('GET', '/api/plugins'); } catch (e) { data = null; }
  if (!data) {
    main.append(h('div', { class: 'panel' },
      h('h2', { text: 'Not available over HTTP yet' }),
      h('p', { text: 'This gateway does not expose a plugin API (GET /api/plugins answered with an error). Plugins are configured in the gateway configuration file; dead letters are listed and replayed with the command line:' }),
      h('pre', { class: 'json', text: 'cipherdesk --help        # see the plugin / outbox commands of your version' })));
    return;
  }
  for (const p of data.plugins) main.appendChild(pluginForm(p));
  for (const p of data.problems || []) {
    main.appendChild(h('p', { class: 'form-error', text: `Plugin ${p.name} (${p.source}) not loaded: ${p.reason}` }));
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
  const state = h('span', { class: 'muted small plugin-state', text: !tc ? 'not configured' : (tc.enabled ? 'enabled' : 'disabled') });
  if (!p.installed) {
    return h('div', { class: 'panel', 'data-plugin': p.name }, h('h2', {}, p.name + ' ', state),
      h('p', { class: 'form-error', text: 'Configured but no longer installed: nothing is delivered.' }));
  }
  const inputs = [];
  const rows = p.config_schema.map((f) => {
    const have = Object.prototype.hasOwnProperty.call(stored, f.name) ? stored[f.name] : f.default;
    let input;
    let note = null;
    if (f.secret) {
      const isSet = secretsSet.includes(f.name);
      input = h('input', { type: 'password', autocomplete: 'new-password', spellcheck: 'false',
        placeholder: isSet ? 'set — leave empty to keep it' : 'not set' });
      note = h('p', { class: 'hint secret-state', 'data-secret': f.name, text: isSet ? 'A value is set (never shown).' : 'Not set.' });
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
      f.help ? h('p', { class: 'hint', text: f.help + (f.choices ? ' Choices: ' + f.choices.join(', ') : '') }) : null, note);
  });
  const enabled = h('input', { type: 'checkbox', id: id('enabled'), checked: tc ? !!tc.enabled : true });
  const save = h('button', { class: 'btn primary', type: 'submit' }, 'Save');
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
      await api('PUT', `/api/plugins/${encodeURIComponent(p.name)}`, { enabled: enabled.checked, config });
      toast(`Plugin ${p.name} saved.`);
      route();
    });
  } }, h('h2', {}, p.name + ' ', state),
  h('p', { class: 'small muted', text: `${p.description || ''} · version ${p.version} · ${p.source}` }),
  rows,
  h('label', { class: 'check' }, enabled, ' Enabled'),
  h('p', {}, save));
  return form;
}

async function deadLetters() {
  const tbody = h('tbody');
  const panel = h('div', { class: 'panel', id: 'dead-letters' }, h('h2', { text: 'Dead letters' }),
    h('p', { class: 'hint', text: 'Events a plugin could not deliver. Fix the cause, then replay: the event goes back to the outbox.' }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'dead-table' },
      h('thead', {}, h('tr', {}, ['Id', 'Plugin', 'Event', 'Attempts', 'Last error', 'Created', ''].map((t) => h('th', { text: t })))), tbody)));
  main.appendChild(panel);
  const load = async () => {
    const { dead } = await api('GET', '/api/plugins/dead');
    clear(tbody);
    if (!dead.length) tbody.appendChild(h('tr', {}, h('td', { colspan: '7', class: 'muted', text: 'No dead letters.' })));
    for (const d of dead) {
      const replay = h('button', { class: 'btn small', type: 'button' }, 'Replay');
      replay.addEventListener('click', () => guarded(replay, async () => {
        await api('POST', `/api/plugins/dead/${encodeURIComponent(d.id)}/replay`);
        toast(`Dead letter ${d.id} replayed.`);
        await load();
      }));
      tbody.appendChild(h('tr', { 'data-dead': String(d.id) },
        h('td', { class: 'mono', text: String(d.id) }), h('td', { text: d.plugin }), h('td', { text: d.event_type }),
        h('td', { text: String(d.attempts) }), h('td', { class: 'small', text: d.last_error || '' }),
        h('td', { class: 'small', text: fmtDate(d.created_at) }), h('td', {}, replay)));
    }
  };
  await load();
}

/* ------------------------------------------------------------------ audit */

async function audit() {
  title('Audit log', 'Every login, access to customer data and administrative change.');
  const action = h('input', { placeholder: 'e.g. login.failed', maxlength: '128' });
  const actor = h('input', { placeholder: 'agent id', maxlength: '128' });
  const since = h('input', { type: 'datetime-local' });
  const until = h('input', { type: 'datetime-local' });
  const tbody = h('tbody');
  const more = h('button', { class: 'btn', type: 'button', hidden: true }, 'Older entries');
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
        h('td', { class: 'small', text: fmtDate(e.ts) }), h('td', { text: e.action }),
        h('td', { class: 'mono', text: e.actor || '' }), h('td', { class: 'mono', text: e.target || '' }),
        h('td', { class: 'mono', text: e.ip || '' }),
        h('td', { class: 'mono small', text: e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : '' })));
    }
    if (!data.events.length && !append) tbody.appendChild(h('tr', {}, h('td', { colspan: '6', class: 'muted', text: 'No matching entries.' })));
    before = data.next_before_id;
    more.hidden = !before;
  };
  more.addEventListener('click', () => guarded(more, () => load(true)));
  const apply = h('button', { class: 'btn primary', type: 'submit' }, 'Filter');
  main.append(
    h('form', { class: 'panel', id: 'audit-filters', onsubmit: (ev) => { ev.preventDefault(); guarded(apply, () => load(false)); } },
      h('div', { class: 'grid2' },
        h('div', {}, field('audit-action', 'Action', action)), h('div', {}, field('audit-actor', 'Actor', actor)),
        h('div', {}, field('audit-since', 'Since', since)), h('div', {}, field('audit-until', 'Until', until))),
      h('p', {}, apply)),
    h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', { id: 'audit-table' },
      h('thead', {}, h('tr', {}, ['Time', 'Action', 'Actor', 'Target', 'IP', 'Details'].map((t) => h('th', { text: t })))), tbody)), more));
  await load(false);
  governance.auditVerifyPanel(main);
}

/* ------------------------------------------------------------------ governance */

function alerts() {
  return governance.alertsSection(main, { canAct: can('emergency'), canTune: can('tenant_manage') });
}

function incidents() {
  return governance.incidentsSection(main);
}

function approvals() {
  return governance.approvalsSection(main, { canConfigure: can('tenant_manage') });
}

/* ------------------------------------------------------------------ emergency */

async function emergency() {
  title('Emergency', 'Cut access fast. Every action here is audited.');
  const { agents: list } = can('agent_manage') ? await api('GET', '/api/agents') : { agents: [] };
  const who = h('select', {}, list.map((a) => h('option', { value: a.id, text: (a.display_name || a.email) + ' — ' + a.email })));
  const revoke = h('button', { class: 'btn danger', type: 'submit' }, 'Revoke all sessions');
  const frozen = !!me.tenant.frozen;
  const freeze = h('button', { class: 'btn ' + (frozen ? 'primary' : 'danger'), type: 'button', id: 'freeze-btn' },
    frozen ? 'Unfreeze tenant' : 'Freeze tenant');
  const state = h('p', { id: 'freeze-state', role: 'status', text: frozen ? 'The tenant is FROZEN: customers cannot chat.' : 'The tenant is live.' });
  freeze.addEventListener('click', () => guarded(freeze, async () => {
    const next = !me.tenant.frozen;
    if (next && !window.confirm('Freeze the tenant? Every customer chat is refused until you unfreeze.')) return;
    await api('POST', '/api/emergency/freeze', { frozen: next });
    me = await whoami();
    toast(next ? 'Tenant frozen.' : 'Tenant unfrozen.');
    boot();
  }));
  const rotate = h('button', { class: 'btn danger', type: 'button', id: 'rotate-btn' }, 'Rotate master key');
  const rotateState = h('p', { id: 'rotate-state', role: 'status', text: '' });
  rotate.addEventListener('click', () => guarded(rotate, async () => {
    if (!window.confirm('Rotate the master key now? Every stored key and secret is re-encrypted; this cannot be undone.')) return;
    const r = await api('POST', '/api/emergency/rotate-keys');
    rotateState.textContent = `New key ${r.key_id} (${r.keys_in_ring} keys in the ring): ` +
      `${r.chat_keys} chat keys, ${r.totp_secrets} TOTP, ${r.identity_secrets} identity and ` +
      `${r.plugin_secrets} plugin secrets moved` + (r.skipped ? `; ${r.skipped} could not be moved.` : '.');
    toast(r.skipped ? 'Keys rotated, with values left behind: see the panel.' : 'Master key rotated.', r.skipped ? 'warn' : undefined);
  }));
  main.append(
    h('form', { class: 'panel danger-zone', id: 'revoke-form', onsubmit: (ev) => {
      ev.preventDefault();
      guarded(revoke, async () => {
        const r = await api('POST', `/api/agents/${encodeURIComponent(who.value)}/revoke-sessions`);
        toast(`${r.sessions_revoked} session(s) revoked; open consoles were disconnected.`);
      });
    } }, h('h2', { text: 'Revoke an agent\'s sessions' }),
    h('p', { class: 'small', text: 'Ends every session of the agent at once (their console sockets close with 4401). Combine with "Reset MFA" or "Disable" on the Agents page for a compromised account.' }),
    field('revoke-agent', 'Agent', who), h('p', {}, revoke)),
    h('div', { class: 'panel danger-zone', id: 'freeze-panel' }, h('h2', { text: 'Freeze the tenant' }),
      h('p', { class: 'small', text: 'Stops all customer chats of this tenant (new and live connections are refused with 4403) until unfrozen.' }),
      state, h('p', {}, freeze)),
    h('div', { class: 'panel danger-zone', id: 'rotate-panel' }, h('h2', { text: 'Rotate keys' }),
      h('p', { class: 'small', text: 'Adds a new master key and re-encrypts every stored data key and secret (TOTP, identity and plugin secrets) under it. Older keys stay in the key file so nothing becomes unreadable. Single-node gateways with a key file only; otherwise use "cipherdesk keys rotate" / "cipherdesk keys rewrap" on the gateway host.' }),
      rotateState, h('p', {}, rotate)));
  await governance.tenantWidePanel(main, { canReadSettings: can('tenant_manage') });
}

/* ------------------------------------------------------------------ embed */

async function embed() {
  title('Embed snippet', 'Paste this into every page of your site that should show the chat button.');
  const info = await (await fetch('/embed.json?tenant=' + encodeURIComponent(me.tenant.id))).json();
  const copy = h('button', { class: 'btn', type: 'button' }, 'Copy');
  copy.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(info.snippet); toast('Copied.'); } catch (e) { toast('Select the text and copy it.', 'warn'); }
  });
  main.append(h('div', { class: 'panel' },
    h('pre', { class: 'snippet', id: 'embed-snippet', text: info.snippet }), copy,
    h('ul', { class: 'small' },
      h('li', {}, h('code', { text: 'data-gateway-key' }), ' pins the gateway\'s signing key: the widget refuses to chat if a proxy swaps keys.'),
      h('li', {}, h('code', { text: 'integrity' }), ' (SRI) makes the browser refuse a modified widget script. It changes when the gateway is upgraded.'),
      h('li', {}, 'Add your site\'s origin to "Allowed origins" in the tenant settings.'))));
}

boot();
