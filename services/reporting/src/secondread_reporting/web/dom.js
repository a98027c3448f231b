// Small DOM helpers shared by the workspace's pages: element building, announcements, the live
// due-time countdowns and the modal dialog.

/** Build an element: h('button', {type: 'button', onclick: f}, 'Accept'). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'value' && 'value' in el) el.value = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Say something to screen readers (the page's polite live region). */
export function announce(text) {
  const region = document.getElementById('announce');
  if (!region) return;
  region.textContent = '';
  window.setTimeout(() => { region.textContent = text; }, 50);
}

export function formatDateTime(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

/** The time left until ``dueMs``: "2 h 05 min 09 s left", or "overdue by 12 min 30 s". */
export function timeLeft(dueMs, nowMs = Date.now()) {
  const seconds = Math.round((dueMs - nowMs) / 1000);
  const abs = Math.abs(seconds);
  const d = Math.floor(abs / 86400);
  const hrs = Math.floor((abs % 86400) / 3600);
  const min = Math.floor((abs % 3600) / 60);
  const sec = abs % 60;
  const pad = (n) => String(n).padStart(2, '0');
  let text;
  if (d > 0) text = `${d} d ${hrs} h ${pad(min)} min`;
  else if (hrs > 0) text = `${hrs} h ${pad(min)} min ${pad(sec)} s`;
  else text = `${min} min ${pad(sec)} s`;
  return { seconds, text: seconds >= 0 ? `${text} left` : `overdue by ${text}` };
}

/** A countdown to ``dueIso``; every countdown on the page ticks once a second. */
export function countdown(dueIso, label) {
  const el = h('span', { role: 'timer', class: 'countdown', dataset: { due: dueIso } });
  if (label) el.setAttribute('aria-label', label);
  paint(el, Date.now());
  return el;
}

function paint(el, now) {
  const { seconds, text } = timeLeft(Date.parse(el.dataset.due), now);
  if (el.textContent !== text) el.textContent = text;
  el.classList.toggle('overdue', seconds < 0);
  el.classList.toggle('soon', seconds >= 0 && seconds < 3600);
  const wasOverdue = el.dataset.overdue === '1';
  if (seconds < 0 && !wasOverdue && el.dataset.painted) {
    announce(`${el.getAttribute('aria-label') || 'A case'} is now overdue`);
  }
  el.dataset.overdue = seconds < 0 ? '1' : '0';
  el.dataset.painted = '1';
}

window.setInterval(() => {
  const now = Date.now();
  document.querySelectorAll('[role=timer][data-due]').forEach((el) => paint(el, now));
}, 1000);

/**
 * A modal dialog (native <dialog>: it keeps the focus inside and closes on Escape). ``build``
 * gets the dialog and returns its content; the focus goes to ``initialFocus`` (a selector) and
 * back to the element that opened it when it closes.
 */
export function modal({ title, build, initialFocus }) {
  const opener = document.activeElement;
  const id = `dialog-${Math.random().toString(36).slice(2, 9)}`;
  const dialog = h('dialog', { 'aria-labelledby': `${id}-title` });
  const close = () => dialog.close();
  dialog.append(h('h2', { id: `${id}-title` }, title), ...[build(dialog, close)].flat());
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (opener && document.contains(opener)) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = initialFocus && dialog.querySelector(initialFocus);
  if (first) first.focus();
  return dialog;
}
