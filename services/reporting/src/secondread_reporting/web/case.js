// The case: the question, the scrubbed original report with its numbered statements, the flags,
// the priors and earlier opinions, the viewer; and the report editor (or, once signed, the
// signed report and its addenda).
import { api, openViewerSession } from './api.js';
import { announce, countdown, formatDateTime, h } from './dom.js';
import { renderEditor } from './editor.js';
import { releasePdfs, renderSigned, showPdf } from './signed.js';
import { declineDialog } from './worklist.js';

const FLAG_MEANING = {
  hedge: 'the original report hedges',
  incidental: 'an incidental finding',
  critical: 'a critical finding',
};

function flagText(flag) {
  const [kind, ...rest] = flag.split(':');
  const meaning = FLAG_MEANING[kind];
  return meaning ? `${meaning}: “${rest.join(':')}”` : flag;
}

/** Same-origin viewer links (the OHIF viewer on reporting) can be embedded; others are linked. */
function embeddable(url) {
  try {
    return new URL(url, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

function viewerSection(view) {
  const links = view.viewer_links || [];
  const section = h('section', { class: 'panel', 'aria-labelledby': 'images-title' },
    h('h2', { id: 'images-title' }, 'Images'));
  if (!links.length) {
    section.append(h('p', {}, 'No study of this case is in the archive yet.'));
    return section;
  }
  const current = view.viewer_url || links[0];
  if (view.status !== 'assigned' && view.status !== 'accepted') {
    section.append(h('p', {}, 'The viewer opens the images of the cases on your worklist; this case is ',
      `${view.status}.`));
    return section;
  }
  if (embeddable(current)) {
    const frame = h('iframe', {
      class: 'viewer-frame', title: 'Diagnostic viewer: the current study and its priors',
      allow: 'fullscreen', id: 'viewer',
    });
    // the viewer in the frame reads the images with the session this page opens for it
    openViewerSession().then(() => { frame.src = current; });
    section.append(frame);
  }
  section.append(h('p', { class: 'actions' },
    h('a', { href: current, target: '_blank', rel: 'noopener' }, 'Open the viewer in a new tab'),
    view.priors.length ? ` (with ${view.priors.length} prior${view.priors.length === 1 ? '' : 's'} side by side)` : ''));
  return section;
}

function caseSection(view) {
  const flags = view.flags.length
    ? h('ul', { class: 'flags' }, view.flags.map((f) => h('li', {}, flagText(f))))
    : h('p', {}, 'No flags.');
  return h('section', { class: 'panel', 'aria-labelledby': 'case-title' },
    h('h2', { id: 'case-title' }, 'The question'),
    h('p', { class: 'question' }, view.clinical_question || '(no question given)'),
    h('h2', {}, 'Flags'),
    flags,
    h('h2', {}, 'The original report (scrubbed)'),
    h('div', { class: 'original', id: 'original-report' }, view.original_report || '(no report)'),
    h('h3', {}, 'Its statements'),
    view.statements.length
      ? h('ol', { class: 'statements', 'aria-label': 'Numbered statements of the original report' },
        view.statements.map((s) => h('li', {},
          h('span', { class: 'num', 'aria-hidden': 'true' }, s.number),
          h('span', {}, h('span', { class: 'visually-hidden' }, `Statement ${s.number}: `), s.text,
            h('span', { class: 'section-name' }, ` (${s.section})`)))))
      : h('p', {}, 'No findings or impression statements were found in the original report.'));
}

function priorsSection(view) {
  const section = h('section', { class: 'panel', 'aria-labelledby': 'priors-title' },
    h('h2', { id: 'priors-title' }, 'Prior studies'));
  if (!view.priors.length) section.append(h('p', {}, 'No prior studies of this patient.'));
  else {
    section.append(h('table', {},
      h('thead', {}, h('tr', {}, ['Date', 'Description', 'Modality', 'Relevance', 'Images']
        .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, view.priors.map((p) => h('tr', {},
        h('td', {}, studyDate(p.study_date)),
        h('td', {}, p.description || '—'),
        h('td', {}, (p.modalities || []).join(', ') || '—'),
        h('td', {}, (p.reasons || []).join('; ') || '—'),
        h('td', {}, h('a', { href: p.viewer_link, target: '_blank', rel: 'noopener' },
          h('span', { class: 'visually-hidden' }, `Prior of ${studyDate(p.study_date)}: `), 'open in the viewer')))))));
  }
  section.append(h('h2', { id: 'opinions-title' }, 'Earlier second opinions'));
  if (!view.earlier_opinions.length) section.append(h('p', {}, 'No earlier second opinions of this patient.'));
  view.earlier_opinions.forEach((o) => {
    const box = h('div');
    const details = h('details', {},
      h('summary', {}, `${formatDateTime(o.signed_at)} · ${o.subspecialty || 'unclassified'} · ${o.radiologist_id}: `,
        o.assessment || '(no assessment line)'),
      box);
    details.addEventListener('toggle', () => {
      if (details.open && !box.childElementCount) showPdf(box, o.report_id, `Earlier opinion of ${formatDateTime(o.signed_at)} (PDF)`);
    });
    section.append(details);
  });
  return section;
}

function studyDate(da) {
  return /^\d{8}$/.test(da || '') ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : da || '—';
}

export async function renderCase(page, caseId) {
  document.title = `Case ${caseId} · Reading workspace · secondread`;
  const { main } = page;
  const heading = h('h1', { tabindex: -1 }, `Case ${caseId}`);
  main.append(h('p', {}, h('a', { href: '/read/', 'data-nav': true }, '← Back to the worklist')), heading,
    h('p', { role: 'status', class: 'hint', id: 'case-loading' }, 'Loading the case…'));
  page.focusHeading();
  let editor = null;
  page.onLeave(() => { if (editor) editor.leave(); releasePdfs(); });

  let view;
  try {
    view = await api(`/v1/cases/${encodeURIComponent(caseId)}`);
  } catch (err) {
    main.querySelector('#case-loading').replaceWith(h('p', { class: 'error', role: 'alert' },
      err.status === 403 ? 'This case is not assigned to you.'
        : err.status === 404 ? 'There is no such case.' : `The case could not be loaded: ${err.message}.`));
    return;
  }
  main.querySelector('#case-loading').remove();

  const statusBadge = h('span', { class: 'badge status', id: 'case-status' }, view.status);
  const actions = h('div', { class: 'actions' });
  const meta = h('dl', { class: 'meta' },
    h('div', {}, h('dt', {}, 'Priority'), h('dd', {}, h('span', { class: `badge priority-${view.priority}` }, view.priority))),
    h('div', {}, h('dt', {}, 'Subspecialty'), h('dd', {}, view.subspecialty || 'unclassified')),
    h('div', {}, h('dt', {}, 'Due'), h('dd', {}, h('time', { datetime: view.due_at }, formatDateTime(view.due_at)))),
    h('div', {}, h('dt', {}, 'Time left'), h('dd', {}, view.status === 'signed' ? 'signed' : countdown(view.due_at, `Case ${caseId}`))),
    h('div', {}, h('dt', {}, 'Status'), h('dd', {}, statusBadge)),
    h('div', {}, h('dt', {}, 'Patient'), h('dd', {}, view.patient_pseudonym)));
  main.append(meta, actions);

  const open = view.status === 'assigned' || view.status === 'accepted';
  if (view.status === 'assigned') {
    actions.append(
      h('p', { class: 'notice' }, 'This case is offered to you. Accept it to take it (you can start the draft already).'),
      h('button', {
        type: 'button', id: 'accept',
        onclick: async (event) => {
          try {
            await api(`/v1/cases/${encodeURIComponent(caseId)}/accept`, { method: 'POST' });
          } catch (err) {
            announce(`Not accepted: ${err.message}`);
            return;
          }
          event.target.closest('.actions').querySelector('.notice')?.remove();
          event.target.remove();
          statusBadge.textContent = 'accepted';
          announce(`Case ${caseId} accepted`);
          heading.focus();
        },
      }, 'Accept the case'));
  }
  if (open) {
    actions.append(h('button', {
      type: 'button', class: 'danger secondary', id: 'decline',
      onclick: () => declineDialog(caseId, () => page.navigate('/read/')),
    }, 'Decline…'));
  }

  main.append(viewerSection(view));
  const right = h('div', { class: 'report-column' });
  main.append(h('div', { class: 'case-grid' },
    h('div', {}, caseSection(view), priorsSection(view)),
    right));

  const signer = view.signer || {};
  const signerName = signer.display_name
    ? `${signer.display_name}${signer.credentials ? `, ${signer.credentials}` : ''}`
    : page.user.name || page.user.username;
  if (view.report) {
    await renderSigned(right, { ...view, signer_name: signerName }, { reload: () => page.navigate(location.pathname) });
  } else if (open) {
    const panel = h('section', { class: 'panel', 'aria-labelledby': 'editor-title' });
    right.append(panel);
    editor = await renderEditor(panel, view, {
      signerName,
      onSigned: async () => {
        if (editor) editor.leave();
        editor = null;
        await page.navigate(location.pathname);
        document.getElementById('signed-title')?.focus();
      },
    });
  } else {
    right.append(h('p', { class: 'notice' }, `This case is ${view.status}; there is nothing to write.`));
  }
}
