// The worklist: the reader's open cases, urgent first, with a live countdown to each due time;
// accept, and decline with a reason.
import { api, ApiError } from './api.js';
import { announce, countdown, formatDateTime, h, modal } from './dom.js';

const REFRESH_MS = 60_000;

export function renderWorklist(page) {
  document.title = 'Worklist · Reading workspace · secondread';
  const status = h('p', { role: 'status', class: 'hint' }, 'Loading your worklist…');
  const body = h('div');
  page.main.append(
    h('h1', { tabindex: -1 }, 'Your worklist'),
    h('p', { class: 'hint' },
      'Urgent cases first, then by due time. Accept a case to take it, or decline it with a ',
      'reason so that routing gives it to another radiologist.'),
    status,
    body,
  );
  page.focusHeading();

  async function load(message) {
    let list;
    try {
      list = await api('/v1/worklist');
    } catch (err) {
      status.textContent = `The worklist could not be loaded: ${err.message}.`;
      status.className = 'error';
      return;
    }
    status.className = 'hint';
    status.textContent = message || `${list.cases.length} open case${list.cases.length === 1 ? '' : 's'}` +
      ` · updated ${new Date().toLocaleTimeString()}`;
    body.replaceChildren(list.cases.length ? table(list.cases) : h('p', {}, 'No open cases.'));
  }

  function table(cases) {
    return h('table', {},
      h('caption', {}, 'Open cases assigned to you'),
      h('thead', {}, h('tr', {},
        ['Priority', 'Case', 'Subspecialty', 'Due', 'Time left', 'Flags', 'Status', 'Actions']
          .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, cases.map(row)));
  }

  function row(c) {
    const open = h('a', { href: `/read/cases/${encodeURIComponent(c.case_id)}`, 'data-nav': true }, c.case_id);
    const actions = h('div', { class: 'actions' });
    if (c.status === 'assigned') {
      actions.append(h('button', { type: 'button', onclick: () => accept(c) }, 'Accept'));
    } else {
      actions.append(h('a', {
        class: 'button', href: `/read/cases/${encodeURIComponent(c.case_id)}`, 'data-nav': true,
        'aria-label': `Open case ${c.case_id}`,
      }, 'Open'));
    }
    actions.append(h('button', {
      type: 'button', class: 'danger secondary', 'aria-label': `Decline case ${c.case_id}`,
      onclick: () => decline(c),
    }, 'Decline…'));
    if (c.status === 'assigned') actions.firstChild.setAttribute('aria-label', `Accept case ${c.case_id}`);
    return h('tr', { dataset: { caseId: c.case_id } },
      h('td', {}, h('span', { class: `badge priority-${c.priority}` }, c.priority)),
      h('th', { scope: 'row' }, open),
      h('td', {}, c.subspecialty || 'unclassified'),
      h('td', {}, h('time', { datetime: c.due_at }, formatDateTime(c.due_at)),
        c.accept_by && c.status === 'assigned'
          ? h('div', { class: 'hint' }, `accept by ${formatDateTime(c.accept_by)}`) : null),
      h('td', {}, countdown(c.due_at, `Case ${c.case_id}`)),
      h('td', {}, c.flags.length ? c.flags.map((f) => h('span', { class: 'badge flag' }, f)) : '—'),
      h('td', {}, h('span', { class: 'badge status' }, c.status)),
      h('td', {}, actions));
  }

  async function accept(c) {
    try {
      await api(`/v1/cases/${encodeURIComponent(c.case_id)}/accept`, { method: 'POST' });
    } catch (err) {
      announce(`Case ${c.case_id} could not be accepted: ${err.message}`);
      status.textContent = `Case ${c.case_id} could not be accepted: ${err.message}.`;
      status.className = 'error';
      return;
    }
    announce(`Case ${c.case_id} accepted`);
    await load(`Case ${c.case_id} accepted. Open it to read and report.`);
    body.querySelector(`tr[data-case-id="${CSS.escape(c.case_id)}"] a.button`)?.focus();
  }

  function decline(c) {
    declineDialog(c.case_id, async () => {
      await load(`Case ${c.case_id} declined; routing assigns it again.`);
      page.focusHeading();
    });
  }

  load();
  const timer = window.setInterval(() => load(), REFRESH_MS);
  page.onLeave(() => window.clearInterval(timer));
}

/** Ask for the reason and decline ``caseId``; ``done`` runs after routing was told. */
export function declineDialog(caseId, done) {
  modal({
    title: `Decline case ${caseId}`,
    initialFocus: 'textarea',
    build: (dialog, close) => {
      const error = h('p', { id: 'decline-error', class: 'error', role: 'alert' });
      const reason = h('textarea', {
        id: 'decline-reason', maxlength: 500, 'aria-describedby': 'decline-hint decline-error',
      });
      const form = h('form', { novalidate: true },
        h('p', { id: 'decline-hint', class: 'hint' },
          'Routing gives the case to another radiologist. Say why (for example outside your ',
          'subspecialty, a conflict of interest, or no capacity before the due time).'),
        h('label', { for: 'decline-reason' }, 'Reason for declining (required)'),
        reason,
        error,
        h('div', { class: 'actions' },
          h('button', { type: 'submit', class: 'danger' }, 'Decline case'),
          h('button', { type: 'button', class: 'secondary', onclick: close }, 'Cancel')));
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        if (!reason.value.trim()) {
          error.textContent = 'Enter the reason for declining.';
          reason.setAttribute('aria-invalid', 'true');
          reason.focus();
          return;
        }
        try {
          await api(`/v1/cases/${encodeURIComponent(caseId)}/decline`, {
            method: 'POST', body: { reason: reason.value.trim() },
          });
        } catch (err) {
          error.textContent = `The case was not declined: ${err instanceof ApiError ? err.message : err}.`;
          return;
        }
        close();
        announce(`Case ${caseId} declined`);
        await done();
      });
      return form;
    },
  });
}
