/* Console notifications: a short beep (WebAudio, no sound file), the unread count in the
 * window title (flashing while the tab is in the background) and desktop notifications
 * for new chats and messages. Each is a setting kept in localStorage (this browser only).
 * Desktop notifications name the customer but never carry message text: they can show
 * on a locked screen. */
import { t } from './common.js';

const { h } = window.CipherdeskUI;
const KEY = 'cipherdesk:notify';
const DEFAULTS = { sound: true, title: true, desktop: false };

let settings = load();
let audio = null;
let unread = 0;
let flashTimer = null;
let baseTitle = document.title;

function load() {
  try { return { ...DEFAULTS, ...(JSON.parse(localStorage.getItem(KEY) || '{}') || {}) }; } catch (e) { return { ...DEFAULTS }; }
}

function save() {
  try { localStorage.setItem(KEY, JSON.stringify(settings)); } catch (e) { /* storage disabled */ }
}

export function getSettings() { return { ...settings }; }

/* Browsers only let a page play sound after a user gesture: unlock on the first one. */
function unlockAudio() {
  if (audio || !window.AudioContext) return;
  try { audio = new window.AudioContext(); } catch (e) { audio = null; }
}
document.addEventListener('pointerdown', unlockAudio, { once: true, capture: true });
document.addEventListener('keydown', unlockAudio, { once: true, capture: true });

export function beep() {
  if (!settings.sound) return;
  unlockAudio();
  if (!audio) return;
  if (audio.state === 'suspended') audio.resume().catch(() => {});
  const now = audio.currentTime;
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.type = 'sine';
  osc.frequency.setValueAtTime(880, now);
  osc.frequency.setValueAtTime(1175, now + 0.09);
  gain.gain.setValueAtTime(0.0001, now);
  gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.25);
  osc.connect(gain).connect(audio.destination);
  osc.start(now);
  osc.stop(now + 0.26);
}

function renderTitle(flashOn) {
  if (!settings.title || unread === 0) { document.title = baseTitle; return; }
  document.title = flashOn ? t('console.notify.title_flash', { count: unread }) : '(' + unread + ') ' + baseTitle;
}

/* The total of unread messages and new chats; flashes while the tab is not in front. */
export function setUnread(count) {
  unread = count;
  clearInterval(flashTimer);
  flashTimer = null;
  renderTitle(false);
  if (unread && settings.title && (document.hidden || !document.hasFocus())) {
    let on = false;
    flashTimer = setInterval(() => { on = !on; renderTitle(on); }, 1000);
  }
}
const stopFlash = () => { clearInterval(flashTimer); flashTimer = null; renderTitle(false); };
window.addEventListener('focus', stopFlash);
document.addEventListener('visibilitychange', () => { if (!document.hidden) stopFlash(); });

/* kind: 'chat' (a new waiting chat) or 'message'; name: the customer's name. */
export function alert(kind, name, tag, onclick) {
  beep();
  if (!settings.desktop || !window.Notification || Notification.permission !== 'granted') return;
  if (!document.hidden && document.hasFocus()) return;  // the console is in front already
  try {
    const n = new Notification(t(kind === 'chat' ? 'console.notify.new_chat' : 'console.notify.new_message', { name }),
      { body: t('console.notify.body'), tag, silent: true });
    n.onclick = () => { window.focus(); if (onclick) onclick(); n.close(); };
  } catch (e) { /* not allowed here (e.g. some mobile browsers) */ }
}

/* The settings form (a <details> in the sidebar). */
export function settingsPanel() {
  const box = (name, label) => {
    const input = h('input', { type: 'checkbox', id: 'notify-' + name, checked: settings[name] });
    input.addEventListener('change', async () => {
      settings[name] = input.checked;
      if (name === 'desktop' && input.checked) {
        const granted = window.Notification && (Notification.permission === 'granted'
          || await Notification.requestPermission().catch(() => 'denied') === 'granted');
        if (!granted) { settings.desktop = false; input.checked = false; note.hidden = false; }
      }
      save();
      renderTitle(false);
    });
    return h('label', { class: 'check', for: 'notify-' + name }, input, ' ' + label);
  };
  const note = h('p', { class: 'hint', role: 'status', hidden: true, text: t('console.notify.denied') });
  return h('details', { class: 'side-block', id: 'notify-settings' },
    h('summary', { text: t('console.notify.settings') }),
    box('sound', t('console.notify.sound')),
    box('title', t('console.notify.title')),
    box('desktop', t('console.notify.desktop')),
    note,
    h('button', { class: 'btn small', type: 'button', onclick: () => { const was = settings.sound; settings.sound = true; beep(); settings.sound = was; } },
      t('console.notify.test_sound')));
}

export function setBaseTitle(title) { baseTitle = title; renderTitle(false); }
