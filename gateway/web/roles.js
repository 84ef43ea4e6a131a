/* cipherdesk admin: custom roles (issue 14.3). A tenant admin cuts a role from a
 * built-in one (a subset of its permissions), gives it to agents from the agent list,
 * edits or deletes it. The server enforces every rule (only narrowing, no granting what
 * one does not hold, an admin always left); this page only offers what can succeed:
 * permissions outside the base or the admin's own are shown disabled. */
import { api, toast, t } from './common.js';

const { h, clear } = window.CipherdeskUI;

const CUSTOM = 'custom:';

/* The label of a permission name, localised; the name itself stays visible in code. */
export function permissionLabel(name) {
  return t('admin.permissions.' + name, { defaultValue: name });
}

/* The role picker of an agent row: the built-in roles, then the tenant's custom roles
 * (value "custom:<name>"). ``onPick`` receives the PATCH body for the choice. */
export function rolePicker(agent, custom, onPick) {
  const builtin = ['agent', 'supervisor', 'admin'].map((r) => h('option', {
    value: r, text: t('common.roles.' + r), selected: !agent.custom_role && r === agent.role }));
  const own = custom.length ? h('optgroup', { label: t('admin.roles.custom_group') }, custom.map((r) => h('option', {
    value: CUSTOM + r.name, selected: agent.custom_role === r.name,
    text: t('admin.roles.option', { name: r.name, base: t('common.roles.' + r.base) }) }))) : null;
  const select = h('select', { 'aria-label': t('admin.agents.role_of', { email: agent.email }) }, builtin, own);
  select.addEventListener('change', () => {
    const value = select.value;
    onPick(value.startsWith(CUSTOM) ? { custom_role: value.slice(CUSTOM.length) } : { role: value }, select);
  });
  return select;
}

export async function rolesSection(main, { field, guarded, current }) {
  main.append(h('h1', { text: t('admin.nav.roles') }), h('p', { class: 'muted', text: t('admin.roles.intro') }));
  const name = h('input', { required: true, maxlength: '32', pattern: '[a-z][a-z0-9_\\-]{1,31}', autocomplete: 'off', spellcheck: 'false' });
  const base = h('select', {}, ['agent', 'supervisor', 'admin'].map((r) => h('option', { value: r, text: t('common.roles.' + r) })));
  const description = h('input', { maxlength: '200', autocomplete: 'off' });
  const perms = h('fieldset', { class: 'perm-list', id: 'role-permissions' }, h('legend', { text: t('admin.roles.permissions') }));
  const submit = h('button', { class: 'btn primary', type: 'submit' }, t('admin.roles.save'));
  const form = h('form', { class: 'panel', id: 'role-form' },
    h('h2', { text: t('admin.roles.define') }), h('p', { class: 'small muted', text: t('admin.roles.define_hint') }),
    h('div', { class: 'grid2' }, h('div', {}, field('role-name', t('admin.roles.name'), name)),
      h('div', {}, field('role-base', t('admin.roles.base'), base))),
    h('div', {}, field('role-description', t('admin.roles.description'), description)), perms, h('p', {}, submit));
  const tbody = h('tbody');
  main.append(form, h('div', { class: 'panel' }, h('h2', { text: t('admin.roles.list') }), h('div', { class: 'table-wrap', tabindex: '0' },
    h('table', { id: 'roles-table' }, h('thead', {}, h('tr', {}, [t('admin.roles.name'), t('admin.roles.base'), t('admin.roles.permissions'),
      t('admin.roles.holders'), t('admin.agents.actions')].map((x) => h('th', { text: x })))), tbody))));

  let data = null;
  const checked = new Set();
  function renderPermissions() {
    clear(perms).appendChild(h('legend', { text: t('admin.roles.permissions') }));
    const builtin = data.builtin.find((r) => r.name === base.value);
    for (const p of builtin.permissions) {
      const allowed = data.grantable.includes(p);
      const box = h('input', { type: 'checkbox', value: p, checked: allowed && checked.has(p), disabled: !allowed });
      box.addEventListener('change', () => { if (box.checked) checked.add(p); else checked.delete(p); });
      perms.appendChild(h('label', { class: 'check', title: allowed ? '' : t('admin.roles.not_yours') },
        box, ' ', permissionLabel(p), ' ', h('code', { class: 'muted small', text: p })));
    }
  }
  // The list arrives after the form is drawn: a base chosen before it is shown once it is.
  base.addEventListener('change', () => { if (data) renderPermissions(); });

  function edit(role) {
    name.value = role.name;
    base.value = role.base;
    description.value = role.description;
    checked.clear();
    role.permissions.forEach((p) => checked.add(p));
    renderPermissions();
    name.focus();
  }

  async function load() {
    data = await api('GET', '/api/roles');
    renderPermissions();
    clear(tbody);
    if (!data.custom.length) tbody.appendChild(h('tr', {}, h('td', { colspan: '5', class: 'muted', text: t('admin.roles.none') })));
    for (const role of data.custom) {
      const editBtn = h('button', { class: 'btn small', type: 'button', onclick: () => edit(role) }, t('admin.roles.edit'));
      const del = h('button', { class: 'btn small danger', type: 'button' }, t('admin.roles.delete'));
      del.addEventListener('click', () => guarded(del, async () => {
        if (!window.confirm(t('admin.roles.delete_confirm', { name: role.name }))) return;
        await api('DELETE', `/api/roles/${encodeURIComponent(role.name)}`);
        toast(t('admin.roles.deleted', { name: role.name }));
        await load();
      }));
      tbody.appendChild(h('tr', { 'data-role': role.name },
        h('td', {}, h('strong', { text: role.name }), role.description ? h('div', { class: 'muted small', text: role.description }) : null),
        h('td', { text: t('common.roles.' + role.base) }),
        h('td', { class: 'small', text: role.permissions.map(permissionLabel).join(t('admin.roles.separator')) }),
        h('td', { text: String(role.holders) }),
        h('td', {}, editBtn, ' ', del)));
    }
  }

  const scim = await scimPanel(field, guarded);
  if (current()) main.appendChild(scim);  // unless the admin moved on meanwhile

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guarded(submit, async () => {
      const wanted = [...perms.querySelectorAll('input:checked')].map((c) => c.value);
      const res = await api('PUT', `/api/roles/${encodeURIComponent(name.value.trim())}`,
        { base: base.value, permissions: wanted, description: description.value });
      toast(t('admin.roles.saved', { name: res.role.name }));
      name.value = '';
      description.value = '';
      checked.clear();
      await load();
    });
  });
  await load();
}

/* Which role each group of the company's identity provider gives (SCIM, issue 20.3):
 * one "group name = role" per line; the gateway checks every role exists and is the
 * admin's to give. */
async function scimPanel(field, guarded) {
  const settings = await api('GET', '/api/scim/settings');
  const lines = h('textarea', { rows: '5', spellcheck: 'false',
    value: Object.entries(settings.group_roles).map(([g, r]) => `${g} = ${r}`).join('\n') });
  const fallback = h('input', { value: settings.default_role, maxlength: '32', autocomplete: 'off' });
  const save = h('button', { class: 'btn primary', type: 'submit' }, t('admin.scim.save'));
  const form = h('form', { class: 'panel', id: 'scim-form' },
    h('h2', { text: t('admin.scim.title') }), h('p', { class: 'small muted', text: t('admin.scim.intro') }),
    h('div', {}, field('scim-groups', t('admin.scim.groups'), lines)),
    h('div', {}, field('scim-default', t('admin.scim.default_role'), fallback)), h('p', {}, save));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guarded(save, async () => {
      const mapping = {};
      for (const raw of lines.value.split('\n')) {
        const at = raw.lastIndexOf('=');
        if (!raw.trim()) continue;
        if (at < 1) throw new Error(t('admin.scim.bad_line', { line: raw.trim().slice(0, 60) }));
        mapping[raw.slice(0, at).trim()] = raw.slice(at + 1).trim();
      }
      await api('PUT', '/api/scim/settings', { group_roles: mapping, default_role: fallback.value.trim() || 'agent' });
      toast(t('admin.scim.saved'));
    });
  });
  return form;
}
