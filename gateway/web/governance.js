/* cipherdesk admin: governance sections — live alerts (acknowledge / resolve, rule tuning),
 * incident records, tenant-wide emergency actions, audit-chain verification.
 * Strings in Chinese and English (Chinese when the browser prefers zh). */
import { api, toast, fmtDate } from './common.js';

const { h, clear } = window.CipherdeskUI;

const ZH = (navigator.languages || [navigator.language || 'en']).some((l) => /^zh\b/i.test(l));

const STRINGS = {
  alerts: ['安全告警', 'Alerts'],
  alertsIntro: ['规则实时监测审计日志中的异常行为；新的告警会立即出现在这里。', 'Rules watch the audit stream for abnormal behaviour; new alerts appear here live.'],
  live: ['实时', 'Live'],
  reconnecting: ['正在重新连接…', 'Reconnecting…'],
  noAlerts: ['暂无告警。', 'No alerts.'],
  time: ['时间', 'Time'], rule: ['规则', 'Rule'], subject: ['对象', 'Subject'], count: ['次数', 'Count'],
  severity: ['级别', 'Severity'], state: ['状态', 'State'], actions: ['操作', 'Actions'],
  ack: ['确认', 'Acknowledge'], resolve: ['解决', 'Resolve'],
  acked: ['已确认告警，已记入事件记录。', 'Alert acknowledged and written to the incident record.'],
  resolved: ['告警已解决。', 'Alert resolved.'],
  open: ['未处理', 'open'], acknowledged: ['已确认', 'acknowledged'], resolvedState: ['已解决', 'resolved'],
  high: ['高', 'high'], medium: ['中', 'medium'], low: ['低', 'low'], critical: ['严重', 'critical'],
  rules: ['告警规则', 'Alert rules'],
  rulesIntro: ['阈值：窗口内达到该次数即告警；每个对象每个窗口最多告警一次。', 'Threshold: alert when this many events happen within the window; at most one alert per subject and window.'],
  threshold: ['阈值', 'Threshold'], window: ['窗口（秒）', 'Window (s)'], enabled: ['启用', 'Enabled'],
  save: ['保存', 'Save'], saved: ['已保存。', 'Saved.'],
  incidents: ['事件记录', 'Incidents'],
  incidentsIntro: ['应急面板的每个操作和每次告警处理都会自动写入当前事件记录。', 'Every emergency action and alert response is written to the open incident automatically.'],
  noIncidents: ['暂无事件记录。', 'No incidents.'],
  title: ['标题', 'Title'], opened: ['开始时间', 'Opened'], who: ['操作人', 'Who'], what: ['操作', 'What'],
  details: ['详情', 'Details'], timeline: ['时间线', 'Timeline'], closeIncident: ['结束事件', 'Close incident'],
  closed: ['事件已结束。', 'Incident closed.'], view: ['查看', 'View'], openState: ['进行中', 'open'], closedState: ['已结束', 'closed'],
  tenantWide: ['全租户应急操作', 'Tenant-wide actions'],
  tenantWideIntro: ['作用于本租户的所有坐席和插件，并自动记入事件记录。', 'Apply to every agent and plugin of this tenant; each is recorded in the incident record.'],
  revokeAll: ['注销全部坐席会话', 'Revoke every agent session'],
  revokeAllHelp: ['所有坐席立即下线（控制台连接以 4401 关闭），您自己的会话保留。', 'Every agent is logged out at once (console sockets close with 4401); your own session stays.'],
  revokeAllConfirm: ['确定注销本租户所有坐席的会话？', 'Revoke every agent session of this tenant?'],
  revoked: ['已注销 {n} 个会话。', '{n} session(s) revoked.'],
  forceReset: ['强制所有坐席重设密码', 'Force a password reset for every agent'],
  forceResetHelp: ['坐席下次登录后必须先设置新密码才能继续工作。', 'After their next login, agents must choose a new password before anything else.'],
  forceResetConfirm: ['确定要求本租户所有坐席（除您以外）重设密码？', 'Require every agent of this tenant (except you) to choose a new password?'],
  forced: ['{n} 名坐席需要重设密码。', '{n} agent(s) must choose a new password.'],
  pausePlugins: ['暂停所有插件', 'Pause all plugins'], resumePlugins: ['恢复插件', 'Resume plugins'],
  pauseHelp: ['停止向工单系统等第三方发送数据；事件保留在发件箱中，恢复后再发送。', 'Stops sending data to helpdesks and other third parties; events stay in the outbox and go out after resuming.'],
  paused: ['插件已暂停。', 'Plugins paused.'], resumed: ['插件已恢复。', 'Plugins resumed.'],
  pausedState: ['插件当前：已暂停', 'Plugins: PAUSED'], runningState: ['插件当前：运行中', 'Plugins: running'],
  verify: ['校验审计日志完整性', 'Verify audit integrity'],
  approvals: ['访问审批', 'Approvals'],
  approvalsIntro: ['查看被标记的原文、删除会话等敏感操作需要说明理由，并可要求第二人批准；批准有时效。', 'Sensitive access (flagged originals, erasing chats) needs a reason and, if set, a second person\'s approval; grants expire.'],
  mode: ['审批方式', 'Approval mode'], modeOff: ['关闭（仅记录审计）', 'Off (audit only)'],
  modeReason: ['须填写理由', 'Reason required'], modeTwo: ['须第二人批准', 'Second person approves'],
  ttl: ['有效期（分钟）', 'Valid for (minutes)'],
  requester: ['申请人', 'Requester'], access: ['访问', 'Access'], target: ['对象', 'Target'], reason: ['理由', 'Reason'],
  approve: ['批准', 'Approve'], deny: ['拒绝', 'Deny'], noPending: ['没有待审批的申请。', 'No pending requests.'],
  decided: ['已处理。', 'Done.'],
  verifyOk: ['审计链完整：已校验 {n} 条记录。', 'Audit chain intact: {n} rows verified.'],
  verifyBad: ['审计链已被篡改：第 {id} 条记录（{problem}）。', 'Audit chain BROKEN at row {id} ({problem}).'],
};

const RULES = {
  bulk_transcript_access: ['批量查看会话记录', 'Bulk transcript access'],
  new_login_context: ['新网络或新浏览器登录', 'Login from a new network or browser'],
  off_hours_access: ['非工作时间访问', 'Access outside working hours'],
  mass_erasure: ['批量删除会话', 'Mass erasure'],
  login_spraying: ['多账号登录失败（撞库）', 'Login spraying'],
  blocked_messages: ['坐席发送大量被拦截消息', 'Many blocked messages from an agent'],
  plugin_dead_letters: ['插件大量投递失败', 'Plugin dead-lettering in bulk'],
};

export function t(key, vars) {
  const pair = STRINGS[key] || RULES[key];
  let text = pair ? pair[ZH ? 0 : 1] : key;
  for (const [k, v] of Object.entries(vars || {})) text = text.replace('{' + k + '}', String(v));
  return text;
}

const STATE_KEY = { open: 'open', acknowledged: 'acknowledged', resolved: 'resolvedState' };

function heading(main, text, intro) {
  main.append(h('h1', { text }), intro ? h('p', { class: 'muted', text: intro }) : null);
}

async function guarded(button, fn) {
  button.disabled = true;
  try { return await fn(); } catch (e) { toast(e.message, 'bad'); return null; } finally { button.disabled = false; }
}

/* ------------------------------------------------------------------ alerts */

export async function alertsSection(main, { canAct, canTune }) {
  heading(main, t('alerts'), t('alertsIntro'));
  const status = h('span', { class: 'pill', id: 'alerts-live', role: 'status', text: t('reconnecting') });
  const tbody = h('tbody');
  const render = (alerts) => {
    clear(tbody);
    if (!alerts.length) tbody.appendChild(h('tr', {}, h('td', { colspan: '7', class: 'muted', text: t('noAlerts') })));
    for (const a of alerts) {
      const buttons = [];
      if (canAct && a.state === 'open') buttons.push(actionButton(a, 'ack', t('ack'), t('acked')));
      if (canAct && a.state !== 'resolved') buttons.push(actionButton(a, 'resolve', t('resolve'), t('resolved')));
      tbody.appendChild(h('tr', { 'data-alert': String(a.id), 'data-state': a.state, class: 'alert-' + a.severity },
        h('td', { class: 'small', text: fmtDate(a.ts) }),
        h('td', { text: t(a.rule) }),
        h('td', { class: 'mono', text: a.subject }),
        h('td', { text: String(a.count) }),
        h('td', {}, h('span', { class: 'pill ' + (a.severity === 'high' ? 'bad' : 'warn'), text: t(a.severity) })),
        h('td', { class: 'alert-state', text: t(STATE_KEY[a.state] || a.state) }),
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
      h('thead', {}, h('tr', {}, ['time', 'rule', 'subject', 'count', 'severity', 'state', 'actions'].map((k) => h('th', { text: t(k) })))),
      tbody))));
  render((await api('GET', '/api/alerts')).alerts);
  const source = new EventSource('/api/alerts/stream');
  source.addEventListener('alerts', (ev) => { status.textContent = t('live'); status.classList.add('ok'); render(JSON.parse(ev.data).alerts); });
  source.addEventListener('error', () => { status.textContent = t('reconnecting'); status.classList.remove('ok'); });
  // The stream belongs to this page view: close it when the admin navigates away.
  window.addEventListener('hashchange', () => source.close(), { once: true });
  if (canTune) await rulesPanel(main);
}

async function rulesPanel(main) {
  const { settings } = await api('GET', '/api/governance/settings');
  const rows = Object.entries(settings.alert_rules).map(([name, r]) => {
    const threshold = h('input', { type: 'number', min: '1', max: '100000', value: String(r.threshold), 'aria-label': t(name) + ' ' + t('threshold'), 'data-rule': name, 'data-field': 'threshold' });
    const windowInput = h('input', { type: 'number', min: '60', max: '7776000', value: String(r.window), 'aria-label': t(name) + ' ' + t('window'), 'data-rule': name, 'data-field': 'window' });
    const enabled = h('input', { type: 'checkbox', 'aria-label': t(name) + ' ' + t('enabled'), 'data-rule': name, 'data-field': 'enabled' });
    enabled.checked = r.enabled;
    return h('tr', {}, h('td', { text: t(name) }), h('td', {}, threshold), h('td', {}, windowInput), h('td', {}, enabled));
  });
  const save = h('button', { class: 'btn primary', type: 'submit' }, t('save'));
  const form = h('form', { class: 'panel', id: 'alert-rules-form' }, h('h2', { text: t('rules') }),
    h('p', { class: 'small', text: t('rulesIntro') }),
    h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, ['rule', 'threshold', 'window', 'enabled'].map((k) => h('th', { text: t(k) })))), h('tbody', {}, rows))),
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
      toast(t('saved'));
    });
  });
  main.append(form);
}

/* ------------------------------------------------------------------ incidents */

export async function incidentsSection(main) {
  heading(main, t('incidents'), t('incidentsIntro'));
  const detail = h('div', { id: 'incident-detail' });
  const { incidents } = await api('GET', '/api/incidents');
  const tbody = h('tbody', {}, incidents.length ? incidents.map((i) => {
    const view = h('button', { class: 'btn small', type: 'button', 'data-incident': String(i.id) }, t('view'));
    view.addEventListener('click', () => guarded(view, () => showIncident(detail, i.id)));
    return h('tr', {}, h('td', { class: 'small', text: fmtDate(i.opened_at) }), h('td', { text: i.title }),
      h('td', { text: t(i.severity) }), h('td', { text: t(i.state === 'open' ? 'openState' : 'closedState') }), h('td', {}, view));
  }) : h('tr', {}, h('td', { colspan: '5', class: 'muted', text: t('noIncidents') })));
  main.append(h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', { id: 'incidents-table' },
    h('thead', {}, h('tr', {}, ['opened', 'title', 'severity', 'state', 'actions'].map((k) => h('th', { text: t(k) })))), tbody))), detail);
  if (incidents.length) await showIncident(detail, incidents[0].id);
}

async function showIncident(detail, id) {
  const { incident, timeline } = await api('GET', `/api/incidents/${id}`);
  const close = h('button', { class: 'btn', type: 'button', id: 'close-incident' }, t('closeIncident'));
  close.addEventListener('click', () => guarded(close, async () => {
    await api('POST', `/api/incidents/${id}/close`, {});
    toast(t('closed'));
    await showIncident(detail, id);
  }));
  clear(detail).append(h('div', { class: 'panel' },
    h('h2', { text: `#${incident.id} ${incident.title}` }),
    h('p', { class: 'small', text: `${t('severity')}: ${t(incident.severity)} · ${t('opened')}: ${fmtDate(incident.opened_at)}` }),
    h('h3', { text: t('timeline') }),
    h('table', { id: 'incident-timeline' },
      h('thead', {}, h('tr', {}, ['time', 'who', 'what', 'details'].map((k) => h('th', { text: t(k) })))),
      h('tbody', {}, timeline.map((e) => h('tr', {}, h('td', { class: 'small', text: fmtDate(e.ts) }),
        h('td', { class: 'mono', text: e.actor }), h('td', { text: e.action }),
        h('td', { class: 'mono small', text: Object.keys(e.details).length ? JSON.stringify(e.details) : '' }))))),
    incident.state === 'open' ? h('p', {}, close) : null));
}

/* ------------------------------------------------------------------ emergency */

export async function tenantWidePanel(main, { canReadSettings }) {
  const count = (key, n) => t(key, { n });
  const revoke = h('button', { class: 'btn danger', type: 'button', id: 'revoke-all-btn' }, t('revokeAll'));
  revoke.addEventListener('click', () => guarded(revoke, async () => {
    if (!window.confirm(t('revokeAllConfirm'))) return;
    const r = await api('POST', '/api/emergency/revoke-sessions', { keep_own_session: true });
    toast(count('revoked', r.sessions_revoked));
  }));
  const reset = h('button', { class: 'btn danger', type: 'button', id: 'force-reset-btn' }, t('forceReset'));
  reset.addEventListener('click', () => guarded(reset, async () => {
    if (!window.confirm(t('forceResetConfirm'))) return;
    const r = await api('POST', '/api/emergency/force-password-reset');
    toast(count('forced', r.agents));
  }));
  let paused = false;
  if (canReadSettings) paused = (await api('GET', '/api/governance/settings')).settings.plugins_paused;
  const pauseState = h('p', { id: 'plugins-state', role: 'status' });
  const pause = h('button', { class: 'btn danger', type: 'button', id: 'pause-plugins-btn' });
  const show = () => { pause.textContent = t(paused ? 'resumePlugins' : 'pausePlugins'); pauseState.textContent = t(paused ? 'pausedState' : 'runningState'); };
  show();
  pause.addEventListener('click', () => guarded(pause, async () => {
    await api('POST', '/api/emergency/pause-plugins', { paused: !paused });
    paused = !paused;
    show();
    toast(t(paused ? 'paused' : 'resumed'));
  }));
  main.append(h('div', { class: 'panel danger-zone', id: 'tenant-wide-panel' },
    h('h2', { text: t('tenantWide') }), h('p', { class: 'small', text: t('tenantWideIntro') }),
    h('p', { class: 'small', text: t('revokeAllHelp') }), h('p', {}, revoke),
    h('p', { class: 'small', text: t('forceResetHelp') }), h('p', {}, reset),
    h('p', { class: 'small', text: t('pauseHelp') }), pauseState, h('p', {}, pause)));
}

/* ------------------------------------------------------------------ audit */

export function auditVerifyPanel(main) {
  const result = h('p', { id: 'audit-verify-result', role: 'status' });
  const button = h('button', { class: 'btn', type: 'button', id: 'audit-verify-btn' }, t('verify'));
  button.addEventListener('click', () => guarded(button, async () => {
    const { report } = await api('GET', '/api/audit/verify');
    result.textContent = report.ok ? t('verifyOk', { n: report.rows })
      : t('verifyBad', { id: report.first_broken_id, problem: report.problem });
    result.className = report.ok ? 'ok' : 'form-error';
  }));
  main.append(h('div', { class: 'panel' }, button, result));
}

/* ------------------------------------------------------------------ approvals */

export async function approvalsSection(main, { canConfigure }) {
  heading(main, t('approvals'), t('approvalsIntro'));
  if (canConfigure) {
    const { settings } = await api('GET', '/api/governance/settings');
    const mode = h('select', { id: 'approval-mode' },
      [['off', 'modeOff'], ['reason', 'modeReason'], ['two_person', 'modeTwo']].map(([v, k]) => h('option', { value: v, text: t(k) })));
    mode.value = settings.approvals.mode;
    const ttl = h('input', { id: 'approval-ttl', type: 'number', min: '1', max: '1440', value: String(settings.approvals.ttl_minutes) });
    const save = h('button', { class: 'btn primary', type: 'submit' }, t('save'));
    const form = h('form', { class: 'panel', id: 'approval-settings' },
      h('label', { for: 'approval-mode', text: t('mode') }), mode,
      h('label', { for: 'approval-ttl', text: t('ttl') }), ttl, h('p', {}, save));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      guarded(save, async () => {
        await api('PUT', '/api/governance/settings', { approvals: { mode: mode.value, ttl_minutes: Number(ttl.value) } });
        toast(t('saved'));
      });
    });
    main.append(form);
  }
  const tbody = h('tbody');
  const load = async () => {
    const { grants } = await api('GET', '/api/approvals?state=pending');
    clear(tbody);
    if (!grants.length) tbody.appendChild(h('tr', {}, h('td', { colspan: '6', class: 'muted', text: t('noPending') })));
    for (const g of grants) {
      const buttons = ['approve', 'deny'].map((verb) => {
        const b = h('button', { class: 'btn small', type: 'button', 'data-action': verb }, t(verb));
        b.addEventListener('click', () => guarded(b, async () => { await api('POST', `/api/approvals/${g.id}/${verb}`); toast(t('decided')); await load(); }));
        return b;
      });
      tbody.appendChild(h('tr', { 'data-grant': String(g.id) }, h('td', { class: 'small', text: fmtDate(g.created_at) }),
        h('td', { class: 'mono', text: g.requester }), h('td', { text: g.action }), h('td', { class: 'mono', text: g.target }),
        h('td', { text: g.reason }), h('td', {}, buttons)));
    }
  };
  main.append(h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', { id: 'approvals-table' },
    h('thead', {}, h('tr', {}, ['time', 'requester', 'access', 'target', 'reason', 'actions'].map((k) => h('th', { text: t(k) })))), tbody))));
  await load();
}
