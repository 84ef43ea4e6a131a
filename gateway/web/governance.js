/* cipherdesk admin: governance sections — live alerts (acknowledge / resolve, rule tuning),
 * incident records, tenant-wide emergency actions, audit-chain verification.
 * Texts come from the shared catalogue (admin.gov.*) in the page's chosen language. */
import { api, toast, fmtDate, t } from './common.js';

const { h, clear } = window.CipherdeskUI;

/* Codes the gateway sends (rule names, severities, states) shown in the reader's language;
 * a code this page does not know yet is shown as it is. */
const ruleName = (rule) => t('admin.gov.rules.' + rule, { defaultValue: rule });
const severityName = (sev) => t('admin.gov.severities.' + sev, { defaultValue: sev });
const alertStateName = (state) => t('admin.gov.alert_state.' + state, { defaultValue: state });
const headers = (keys) => h('thead', {}, h('tr', {}, keys.map((k) => h('th', { text: t(k) }))));

function heading(main, text, intro) {
  window.CipherdeskUI.append(main, [h('h1', { text }), intro ? h('p', { class: 'muted', text: intro }) : null]);
}

async function guarded(button, fn) {
  button.disabled = true;
  try { return await fn(); } catch (e) { toast(e.message, 'bad'); return null; } finally { button.disabled = false; }
}

/* ------------------------------------------------------------------ alerts */

export async function alertsSection(main, { canAct, canTune }) {
  heading(main, t('admin.gov.alerts'), t('admin.gov.alerts_intro'));
  const status = h('span', { class: 'pill', id: 'alerts-live', role: 'status', text: t('common.reconnecting') });
  const tbody = h('tbody');
  const render = (alerts) => {
    clear(tbody);
    if (!alerts.length) tbody.appendChild(h('tr', {}, h('td', { colspan: '7', class: 'muted', text: t('admin.gov.no_alerts') })));
    for (const a of alerts) {
      const buttons = [];
      if (canAct && a.state === 'open') buttons.push(actionButton(a, 'ack', t('admin.gov.ack'), t('admin.gov.acked')));
      if (canAct && a.state !== 'resolved') buttons.push(actionButton(a, 'resolve', t('admin.gov.resolve'), t('admin.gov.resolved')));
      tbody.appendChild(h('tr', { 'data-alert': String(a.id), 'data-state': a.state, class: 'alert-' + a.severity },
        h('td', { class: 'small', text: fmtDate(a.ts) }),
        h('td', { text: ruleName(a.rule) }),
        h('td', { class: 'mono', text: a.subject }),
        h('td', { text: String(a.count) }),
        h('td', {}, h('span', { class: 'pill ' + (a.severity === 'high' ? 'bad' : 'warn'), text: severityName(a.severity) })),
        h('td', { class: 'alert-state', text: alertStateName(a.state) }),
        h('td', {}, buttons)));
    }
  };
  const actionButton = (a, verb, label, done) => {
    const b = h('button', { class: 'btn small', type: 'button', 'data-action': verb }, label);
    b.addEventListener('click', () => guarded(b, async () => {
      await api('POST', `/api/alerts/${a.id}/${verb}`);
      toast(done);
    }));
    return b;
  };
  main.append(h('div', { class: 'panel' }, h('p', {}, status),
    h('div', { class: 'table-wrap' }, h('table', { id: 'alerts-table' },
      headers(['admin.gov.time', 'admin.gov.rule', 'admin.gov.subject', 'admin.gov.count', 'admin.gov.severity', 'admin.gov.state', 'admin.gov.actions']),
      tbody))));
  render((await api('GET', '/api/alerts')).alerts);
  const source = new EventSource('/api/alerts/stream');
  source.addEventListener('alerts', (ev) => { status.textContent = t('admin.gov.live'); status.classList.add('ok'); render(JSON.parse(ev.data).alerts); });
  source.addEventListener('error', () => { status.textContent = t('common.reconnecting'); status.classList.remove('ok'); });
  // The stream belongs to this page view: close it when the admin navigates away.
  window.addEventListener('hashchange', () => source.close(), { once: true });
  if (canTune) await rulesPanel(main);
}

async function rulesPanel(main) {
  const { settings } = await api('GET', '/api/governance/settings');
  const rows = Object.entries(settings.alert_rules).map(([name, r]) => {
    const threshold = h('input', { type: 'number', min: '1', max: '100000', value: String(r.threshold), 'aria-label': t('admin.gov.rule_field', { rule: ruleName(name), field: t('admin.gov.threshold') }), 'data-rule': name, 'data-field': 'threshold' });
    const windowInput = h('input', { type: 'number', min: '60', max: '7776000', value: String(r.window), 'aria-label': t('admin.gov.rule_field', { rule: ruleName(name), field: t('admin.gov.window') }), 'data-rule': name, 'data-field': 'window' });
    const enabled = h('input', { type: 'checkbox', 'aria-label': t('admin.gov.rule_field', { rule: ruleName(name), field: t('admin.gov.enabled') }), 'data-rule': name, 'data-field': 'enabled' });
    enabled.checked = r.enabled;
    return h('tr', {}, h('td', { text: ruleName(name) }), h('td', {}, threshold), h('td', {}, windowInput), h('td', {}, enabled));
  });
  const save = h('button', { class: 'btn primary', type: 'submit' }, t('common.save'));
  const form = h('form', { class: 'panel', id: 'alert-rules-form' }, h('h2', { text: t('admin.gov.rules_title') }),
    h('p', { class: 'small', text: t('admin.gov.rules_intro') }),
    h('div', { class: 'table-wrap' }, h('table', {}, headers(['admin.gov.rule', 'admin.gov.threshold', 'admin.gov.window', 'admin.gov.enabled']), h('tbody', {}, rows))),
    h('p', {}, save));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guarded(save, async () => {
      const rules = {};
      for (const input of form.querySelectorAll('input[data-rule]')) {
        const r = (rules[input.dataset.rule] ||= {});
        r[input.dataset.field] = input.type === 'checkbox' ? input.checked : Number(input.value);
      }
      await api('PUT', '/api/governance/settings', { alert_rules: rules });
      toast(t('admin.gov.saved'));
    });
  });
  main.append(form);
}

/* ------------------------------------------------------------------ incidents */

export async function incidentsSection(main) {
  heading(main, t('admin.gov.incidents'), t('admin.gov.incidents_intro'));
  const detail = h('div', { id: 'incident-detail' });
  const { incidents } = await api('GET', '/api/incidents');
  const tbody = h('tbody', {}, incidents.length ? incidents.map((i) => {
    const view = h('button', { class: 'btn small', type: 'button', 'data-incident': String(i.id) }, t('admin.gov.view'));
    view.addEventListener('click', () => guarded(view, () => showIncident(detail, i.id)));
    return h('tr', {}, h('td', { class: 'small', text: fmtDate(i.opened_at) }), h('td', { text: i.title }),
      h('td', { text: severityName(i.severity) }), h('td', { text: t(i.state === 'open' ? 'admin.gov.incident_open' : 'admin.gov.incident_closed') }), h('td', {}, view));
  }) : h('tr', {}, h('td', { colspan: '5', class: 'muted', text: t('admin.gov.no_incidents') })));
  main.append(h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', { id: 'incidents-table' },
    headers(['admin.gov.opened', 'admin.gov.title', 'admin.gov.severity', 'admin.gov.state', 'admin.gov.actions']), tbody))), detail);
  if (incidents.length) await showIncident(detail, incidents[0].id);
}

async function showIncident(detail, id) {
  const { incident, timeline } = await api('GET', `/api/incidents/${id}`);
  const close = h('button', { class: 'btn', type: 'button', id: 'close-incident' }, t('admin.gov.close_incident'));
  close.addEventListener('click', () => guarded(close, async () => {
    await api('POST', `/api/incidents/${id}/close`, {});
    toast(t('admin.gov.closed'));
    await showIncident(detail, id);
  }));
  clear(detail).append(h('div', { class: 'panel' },
    h('h2', { text: `#${incident.id} ${incident.title}` }),
    h('p', { class: 'small', text: t('admin.gov.incident_meta', { severity: severityName(incident.severity), opened: fmtDate(incident.opened_at) }) }),
    h('h3', { text: t('admin.gov.timeline') }),
    h('table', { id: 'incident-timeline' },
      headers(['admin.gov.time', 'admin.gov.who', 'admin.gov.what', 'admin.gov.details']),
      h('tbody', {}, timeline.map((e) => h('tr', {}, h('td', { class: 'small', text: fmtDate(e.ts) }),
        h('td', { class: 'mono', text: e.actor }), h('td', { text: e.action }),
        h('td', { class: 'mono small', text: Object.keys(e.details).length ? JSON.stringify(e.details) : '' }))))),
    incident.state === 'open' ? h('p', {}, close) : null));
}

/* ------------------------------------------------------------------ emergency */

export async function tenantWidePanel(main, { canReadSettings }) {
  const revoke = h('button', { class: 'btn danger', type: 'button', id: 'revoke-all-btn' }, t('admin.gov.revoke_all'));
  revoke.addEventListener('click', () => guarded(revoke, async () => {
    if (!window.confirm(t('admin.gov.revoke_all_confirm'))) return;
    const r = await api('POST', '/api/emergency/revoke-sessions', { keep_own_session: true });
    toast(t('admin.gov.revoked', { count: r.sessions_revoked }));
  }));
  const reset = h('button', { class: 'btn danger', type: 'button', id: 'force-reset-btn' }, t('admin.gov.force_reset'));
  reset.addEventListener('click', () => guarded(reset, async () => {
    if (!window.confirm(t('admin.gov.force_reset_confirm'))) return;
    const r = await api('POST', '/api/emergency/force-password-reset');
    toast(t('admin.gov.forced', { count: r.agents }));
  }));
  let paused = false;
  if (canReadSettings) paused = (await api('GET', '/api/governance/settings')).settings.plugins_paused;
  const pauseState = h('p', { id: 'plugins-state', role: 'status' });
  const pause = h('button', { class: 'btn danger', type: 'button', id: 'pause-plugins-btn' });
  const show = () => { pause.textContent = t(paused ? 'admin.gov.resume_plugins' : 'admin.gov.pause_plugins'); pauseState.textContent = t(paused ? 'admin.gov.paused_state' : 'admin.gov.running_state'); };
  show();
  pause.addEventListener('click', () => guarded(pause, async () => {
    await api('POST', '/api/emergency/pause-plugins', { paused: !paused });
    paused = !paused;
    show();
    toast(t(paused ? 'admin.gov.paused' : 'admin.gov.resumed'));
  }));
  main.append(h('div', { class: 'panel danger-zone', id: 'tenant-wide-panel' },
    h('h2', { text: t('admin.gov.tenant_wide') }), h('p', { class: 'small', text: t('admin.gov.tenant_wide_intro') }),
    h('p', { class: 'small', text: t('admin.gov.revoke_all_help') }), h('p', {}, revoke),
    h('p', { class: 'small', text: t('admin.gov.force_reset_help') }), h('p', {}, reset),
    h('p', { class: 'small', text: t('admin.gov.pause_help') }), pauseState, h('p', {}, pause)));
}

/* ------------------------------------------------------------------ audit */

export function auditVerifyPanel(main) {
  const result = h('p', { id: 'audit-verify-result', role: 'status' });
  const button = h('button', { class: 'btn', type: 'button', id: 'audit-verify-btn' }, t('admin.gov.verify'));
  button.addEventListener('click', () => guarded(button, async () => {
    const { report } = await api('GET', '/api/audit/verify');
    result.textContent = report.ok ? t('admin.gov.verify_ok', { count: report.rows })
      : t('admin.gov.verify_bad', { id: report.first_broken_id, problem: report.problem });
    result.className = report.ok ? 'ok' : 'form-error';
  }));
  main.append(h('div', { class: 'panel' }, button, result));
}

/* ------------------------------------------------------------------ approvals */

export async function approvalsSection(main, { canConfigure }) {
  heading(main, t('admin.gov.approvals'), t('admin.gov.approvals_intro'));
  if (canConfigure) {
    const { settings } = await api('GET', '/api/governance/settings');
    const mode = h('select', { id: 'approval-mode' },
      [['off', 'admin.gov.mode_off'], ['reason', 'admin.gov.mode_reason'], ['two_person', 'admin.gov.mode_two_person']].map(([v, k]) => h('option', { value: v, text: t(k) })));
    mode.value = settings.approvals.mode;
    const ttl = h('input', { id: 'approval-ttl', type: 'number', min: '1', max: '1440', value: String(settings.approvals.ttl_minutes) });
    const save = h('button', { class: 'btn primary', type: 'submit' }, t('common.save'));
    const form = h('form', { class: 'panel', id: 'approval-settings' },
      h('label', { for: 'approval-mode', text: t('admin.gov.mode') }), mode,
      h('label', { for: 'approval-ttl', text: t('admin.gov.ttl') }), ttl, h('p', {}, save));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      guarded(save, async () => {
        await api('PUT', '/api/governance/settings', { approvals: { mode: mode.value, ttl_minutes: Number(ttl.value) } });
        toast(t('admin.gov.saved'));
      });
    });
    main.append(form);
  }
  const tbody = h('tbody');
  const load = async () => {
    const { grants } = await api('GET', '/api/approvals?state=pending');
    clear(tbody);
    if (!grants.length) tbody.appendChild(h('tr', {}, h('td', { colspan: '6', class: 'muted', text: t('admin.gov.no_pending') })));
    for (const g of grants) {
      const buttons = [['approve', 'admin.gov.approve'], ['deny', 'admin.gov.deny']].map(([verb, label]) => {
        const b = h('button', { class: 'btn small', type: 'button', 'data-action': verb }, t(label));
        b.addEventListener('click', () => guarded(b, async () => { await api('POST', `/api/approvals/${g.id}/${verb}`); toast(t('admin.gov.decided')); await load(); }));
        return b;
      });
      tbody.appendChild(h('tr', { 'data-grant': String(g.id) }, h('td', { class: 'small', text: fmtDate(g.created_at) }),
        h('td', { class: 'mono', text: g.requester }), h('td', { text: g.action }), h('td', { class: 'mono', text: g.target }),
        h('td', { text: g.reason }), h('td', {}, buttons)));
    }
  };
  main.append(h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', { id: 'approvals-table' },
    headers(['admin.gov.time', 'admin.gov.requester', 'admin.gov.access', 'admin.gov.target', 'admin.gov.reason', 'admin.gov.actions']), tbody))));
  await load();
}
