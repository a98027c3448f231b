// A signed report in the page: its verification, its PDF (fetched with the reader's token and
// shown from a blob: URL), its addenda, and the form to sign a new addendum.
import { api, idempotencyKey, request } from './api.js';
import { announce, formatDateTime, h, modal } from './dom.js';
import { missingList } from './editor.js';
import { assessmentFields, recommendationsList } from './fields.js';

const blobs = [];

/** Release the PDFs' blob: URLs (when the page is left). */
export function releasePdfs() {
  while (blobs.length) URL.revokeObjectURL(blobs.pop());
}

/** The PDF of ``reportId`` in an iframe, with a download link; into ``box``. */
export async function showPdf(box, reportId, title) {
  box.replaceChildren(h('p', { class: 'hint', role: 'status' }, 'Loading the PDF…'));
  let blob;
  try {
    blob = (await request(`/v1/reports/${encodeURIComponent(reportId)}/pdf`, { as: 'blob' })).data;
  } catch (err) {
    box.replaceChildren(h('p', { class: 'error', role: 'alert' }, `The PDF could not be loaded: ${err.message}.`));
    return;
  }
  const url = URL.createObjectURL(new Blob([blob], { type: 'application/pdf' }));
  blobs.push(url);
  const frame = h('iframe', { class: 'pdf-frame', src: url, title });
  frame.addEventListener('load', () => { frame.dataset.loaded = '1'; });
  box.replaceChildren(
    frame,
    h('p', {}, h('a', { href: url, download: `secondread-report-${reportId}.pdf` }, `Download the PDF (${Math.round(blob.size / 1024)} KB)`)));
}

export async function renderSigned(container, view, { reload }) {
  const report = view.report;
  const verify = h('p', { role: 'status' }, 'Checking the signature…');
  const pdf = h('div', { id: 'signed-pdf' });
  container.append(
    h('section', { class: 'panel signed', 'aria-labelledby': 'signed-title' },
      h('h2', { id: 'signed-title', tabindex: -1 }, 'Signed report'),
      h('p', {}, `Signed ${formatDateTime(report.signed_at)} · report `, h('code', {}, report.report_id)),
      verify,
      pdf),
  );
  api(`/v1/reports/${encodeURIComponent(report.report_id)}/verify`).then((v) => {
    verify.textContent = v.valid
      ? `Signature valid: ${v.algorithm}, signed by ${v.signer.display_name} (${v.signer.credentials}), key ${v.key_id}, fingerprint ${v.signer.key_fingerprint}.`
      : 'The signature does NOT verify against the published key.';
    verify.className = v.valid ? '' : 'error';
  }, (err) => { verify.textContent = `The signature could not be checked: ${err.message}.`; });
  await showPdf(pdf, report.report_id, 'The signed report (PDF)');

  const addenda = h('section', { class: 'panel', 'aria-labelledby': 'addenda-title' },
    h('h2', { id: 'addenda-title' }, 'Addenda'));
  if (!report.addenda.length) addenda.append(h('p', {}, 'No addenda yet.'));
  report.addenda.forEach((a, i) => {
    const box = h('div');
    const details = h('details', {}, h('summary', {}, `Addendum ${i + 1}, signed ${formatDateTime(a.signed_at)}`), box);
    details.addEventListener('toggle', () => {
      if (details.open && !box.childElementCount) showPdf(box, a.report_id, `Addendum ${i + 1} (PDF)`);
    });
    addenda.append(details);
  });
  addenda.append(addendumForm(report.report_id, view.signer_name, reload));
  container.append(addenda);
}

function addendumForm(reportId, signerName, reload) {
  const changed = () => {};
  const text = h('textarea', { id: 'add-text', rows: 4, 'aria-describedby': 'add-text-hint' });
  const assessment = assessmentFields('add-', changed);
  const recommendations = recommendationsList('add-', changed);
  const problems = h('div', { id: 'addendum-problems' });
  const form = h('form', { id: 'addendum', novalidate: true },
    h('h3', {}, 'Add an addendum'),
    h('p', { class: 'hint' }, 'A signed report never changes. An addendum is a new signed document that ',
      'cites it: what changes, and why.'),
    h('label', { for: 'add-text' }, 'What changes, and why'),
    h('p', { class: 'hint', id: 'add-text-hint' }, 'Required.'),
    text,
    h('h4', {}, 'Assessment after this addendum'),
    assessment.element,
    h('h4', {}, 'Recommendations (optional)'),
    recommendations.element,
    problems,
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'addendum-sign' }, 'Sign the addendum…')));

  const show = (items) => {
    problems.replaceChildren(h('div', { class: 'error-summary', role: 'alert' },
      h('h4', { tabindex: -1 }, 'The addendum cannot be signed yet'), missingList(items, 'add-')));
    problems.querySelector('h4').focus();
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { text: text.value, assessment: assessment.read(), recommendations: recommendations.read() };
    const local = [];
    if (!body.text.trim()) local.push('text');
    if (local.length) {
      problems.replaceChildren(h('div', { class: 'error-summary', role: 'alert' },
        h('h4', { tabindex: -1 }, 'The addendum cannot be signed yet'),
        h('ul', {}, h('li', {}, h('a', { href: '#add-text', onclick: (e) => { e.preventDefault(); text.focus(); } },
          'What changes, and why: the text of the addendum')))));
      problems.querySelector('h4').focus();
      return;
    }
    const key = idempotencyKey();
    modal({
      title: 'Sign this addendum?',
      initialFocus: '#addendum-cancel',
      build: (dialog, close) => {
        const error = h('p', { class: 'error', role: 'alert' });
        const confirm = h('button', { type: 'button', id: 'addendum-confirm' }, 'Sign the addendum');
        confirm.addEventListener('click', async () => {
          confirm.disabled = true;
          try {
            await request(`/v1/reports/${encodeURIComponent(reportId)}/addenda`, {
              method: 'POST', body, headers: { 'Idempotency-Key': key },
            });
          } catch (err) {
            confirm.disabled = false;
            if (err.status === 422 && err.missing.length) { close(); show(err.missing); return; }
            error.textContent = `Not signed: ${err.message}.`;
            return;
          }
          close();
          announce('The addendum is signed.');
          reload();
        });
        return [
          h('p', {}, `You sign this addendum as ${signerName}. It goes to the treating physician, `,
            'and like the report it never changes once signed.'),
          error,
          h('div', { class: 'actions' }, confirm,
            h('button', { type: 'button', class: 'secondary', id: 'addendum-cancel', onclick: close }, 'Cancel')),
        ];
      },
    });
  });
  return form;
}
