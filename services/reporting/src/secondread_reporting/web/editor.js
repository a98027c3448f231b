// The report editor: a verdict, RADPEER grade and comment for every original statement, the
// findings, the assessment and typed recommendations. The draft is saved as the reader types
// (debounced, with If-Match on its version); a save refused as stale (412, another tab or window
// saved meanwhile) is merged field by field, and a field changed in both places is put to the
// reader, never overwritten silently. Signing asks for a confirmation first.
import { idempotencyKey, request } from './api.js';
import { announce, h, modal } from './dom.js';
import { assessmentFields, recommendationText, recommendationsList } from './fields.js';
import { fieldName, merge3, sameDraft, unflatten } from './merge.js';

const SAVE_AFTER_MS = 800;
const RETRY_AFTER_MS = 5000;

export const GRADES = [
  ['', 'Not graded'],
  ['1', '1: concur with the interpretation'],
  ['2a', '2a: discrepancy not ordinarily expected to be made; unlikely to be clinically significant'],
  ['2b', '2b: discrepancy not ordinarily expected to be made; likely to be clinically significant'],
  ['3a', '3a: discrepancy that should be made most of the time; unlikely to be clinically significant'],
  ['3b', '3b: discrepancy that should be made most of the time; likely to be clinically significant'],
];
const VERDICTS = [
  ['confirmed', 'Confirmed'],
  ['refined', 'Refined'],
  ['revised', 'Revised'],
];

/** Where a ``missing`` line of the API points in the form (the id of the field to focus). */
export function fieldFor(item, prefix = '') {
  let m = item.match(/^statement (\d+) verdict/);
  if (m) return `verdict-${m[1]}-confirmed`;
  m = item.match(/^statement (\d+)( RADPEER grade|: a confirmed)/);
  if (m) return `grade-${m[1]}`;
  m = item.match(/^assessment\.(\w+_changed)/);
  if (m) return `${prefix}${m[1]}-yes`;
  if (item.startsWith('assessment.summary')) return `${prefix}summary`;
  m = item.match(/^recommendation (\d+) \(\w+\) (\w+)/);
  if (m) return `${prefix}rec-${Number(m[1]) - 1}-${m[2]}`;
  if (item.startsWith('recommendations')) return `${prefix}add-recommendation`;
  if (item === 'findings') return 'findings';
  return null;
}

/** A reader's wording of a ``missing`` line. */
export function describeMissing(item) {
  const named = {
    'assessment.diagnosis_changed (yes or no)': 'Assessment: does the diagnosis change? (yes or no)',
    'assessment.severity_changed (yes or no)': 'Assessment: does the severity change? (yes or no)',
    'assessment.staging_changed (yes or no)': 'Assessment: does the staging change? (yes or no)',
    'assessment.summary': 'Assessment: the summary line',
    findings: 'Findings: your own description of the images',
  }[item];
  if (named) return named;
  const text = item.replace(/\((follow_up_imaging|referral)\)/, (_, t) => `(${t.replace(/_/g, ' ')})`);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A list of what is missing, each a link that moves the focus to its field. */
export function missingList(items, prefix = '') {
  return h('ul', {}, items.map((item) => {
    const id = fieldFor(item, prefix);
    const text = describeMissing(item);
    if (!id) return h('li', {}, text);
    return h('li', {}, h('a', {
      href: `#${id}`,
      onclick: (event) => {
        event.preventDefault();
        const el = document.getElementById(id);
        if (el) { el.scrollIntoView({ block: 'center' }); el.focus(); }
      },
    }, text));
  }));
}

function statementReview(s, onChange) {
  const grade = h('select', { id: `grade-${s.number}`, onchange: onChange,
    'aria-describedby': `grade-${s.number}-hint` },
  GRADES.map(([value, text]) => h('option', { value }, text)));
  return h('fieldset', { class: 'statement-review', dataset: { number: s.number } },
    h('legend', {}, h('span', { class: 'num' }, s.number), ' ', s.text,
      h('span', { class: 'section-name' }, ` (${s.section})`)),
    h('fieldset', {}, h('legend', {}, `Verdict on statement ${s.number}`),
      h('div', { class: 'verdicts' }, VERDICTS.map(([value, text]) => h('label', {
        class: 'inline', for: `verdict-${s.number}-${value}`,
      }, h('input', {
        type: 'radio', name: `verdict-${s.number}`, id: `verdict-${s.number}-${value}`, value,
        onchange: onChange,
      }), text)))),
    h('div', { class: 'row' },
      h('div', {},
        h('label', { for: `grade-${s.number}` }, 'RADPEER grade'),
        grade,
        h('p', { class: 'hint', id: `grade-${s.number}-hint` },
          'Refined or revised: a grade is required. Confirmed: 1, or leave it ungraded.')),
      h('div', {},
        h('label', { for: `comment-${s.number}` }, 'Comment'),
        h('input', { type: 'text', id: `comment-${s.number}`, oninput: onChange }))));
}

/**
 * Render the editor for ``view`` (the case view) into ``container``; ``onSigned(reportId)``
 * runs once the report is signed. Returns {flush, leave} for the page.
 */
export async function renderEditor(container, view, { onSigned, signerName }) {
  const caseId = view.case_id;
  const draftPath = `/v1/cases/${encodeURIComponent(caseId)}/draft`;
  let saved; // {version, content}: what reporting holds, as far as this tab knows
  let missing = [];
  let timer = null;
  let inFlight = null;
  let again = false;
  let conflict = null;

  let first;
  try {
    first = await request(draftPath);
  } catch (err) {
    container.append(h('p', { class: 'error', role: 'alert' }, `The draft could not be loaded: ${err.message}.`));
    return { flush: async () => true, leave: () => {} };
  }
  saved = { version: first.data.version, content: first.data.draft };
  missing = first.data.missing;

  const changed = () => onEdit();
  const statementBoxes = view.statements.map((s) => statementReview(s, changed));
  const findings = h('textarea', { id: 'findings', rows: 6, oninput: changed,
    'aria-describedby': 'findings-hint' });
  const assessment = assessmentFields('', changed);
  const recommendations = recommendationsList('', changed);
  const status = h('p', { id: 'save-status', class: 'save-status', role: 'status', 'aria-live': 'polite' });
  const conflictBox = h('div', { id: 'conflict' });
  const problems = h('div', { id: 'sign-problems' });
  const signButton = h('button', { type: 'button', id: 'sign', onclick: () => startSign() }, 'Sign the report…');
  const resolveButton = h('button', {
    type: 'button', id: 'show-conflict', class: 'secondary', hidden: true,
    onclick: () => {
      const title = document.getElementById('conflict-title');
      if (title) { title.closest('section').scrollIntoView({ block: 'start' }); title.focus({ preventScroll: true }); }
    },
  }, 'Show the conflict');

  const form = h('form', { id: 'editor', novalidate: true, onsubmit: (e) => e.preventDefault() },
    h('h2', { id: 'editor-title', tabindex: -1 }, 'Your second opinion'),
    h('p', { class: 'hint' }, 'Saved as you type. Everything below is required to sign, except the comments.'),
    conflictBox,
    h('h3', {}, 'The original statements'),
    view.statements.length ? statementBoxes
      : h('p', {}, 'The original report has no findings or impression statements to review.'),
    h('h3', {}, h('label', { for: 'findings', class: 'as-heading' }, 'Findings')),
    h('p', { class: 'hint', id: 'findings-hint' }, 'What you see, in your own words.'),
    findings,
    h('h3', {}, 'Assessment'),
    assessment.element,
    h('h3', {}, 'Recommendations'),
    h('p', { class: 'hint' }, 'At least one; choose "No further action" when there is nothing to do.'),
    recommendations.element,
    problems,
    h('div', { class: 'savebar' }, status, resolveButton, signButton));
  container.append(form);

  // ---- the form and the draft ------------------------------------------------------------

  function read() {
    return {
      findings: findings.value,
      statements: view.statements.map((s) => {
        const box = statementBoxes.find((b) => b.dataset.number === String(s.number));
        const verdict = box.querySelector(`input[name="verdict-${s.number}"]:checked`);
        return {
          number: s.number,
          verdict: verdict ? verdict.value : null,
          grade: box.querySelector(`#grade-${s.number}`).value || null,
          comment: box.querySelector(`#comment-${s.number}`).value,
        };
      }),
      assessment: assessment.read(),
      recommendations: recommendations.read(),
    };
  }

  const setValue = (el, value) => { if (el.value !== value) el.value = value; };

  function write(content) {
    setValue(findings, content.findings || '');
    const reviews = new Map((content.statements || []).map((r) => [r.number, r]));
    for (const s of view.statements) {
      const r = reviews.get(s.number) || {};
      for (const [value] of VERDICTS) {
        document.getElementById(`verdict-${s.number}-${value}`).checked = r.verdict === value;
      }
      setValue(document.getElementById(`grade-${s.number}`), r.grade || '');
      setValue(document.getElementById(`comment-${s.number}`), r.comment || '');
    }
    assessment.write(content.assessment || {});
    recommendations.write(content.recommendations || []);
  }

  const same = sameDraft;
  const savedText = () => `All changes saved (version ${saved.version}, ${new Date().toLocaleTimeString()}).`;

  function setStatus(text, kind = '') {
    status.textContent = text;
    status.className = `save-status ${kind}`;
    resolveButton.hidden = !conflict;
  }

  function onEdit() {
    if (conflict) {
      setStatus('Not saved: this draft was also changed elsewhere; choose what to keep.', 'error');
      return;
    }
    setStatus('Unsaved changes…');
    window.clearTimeout(timer);
    timer = window.setTimeout(save, SAVE_AFTER_MS);
  }

  /** Save now if anything changed; true when reporting holds what the form shows. */
  async function save() {
    window.clearTimeout(timer);
    timer = null;
    if (conflict) return false;
    if (inFlight) { again = true; return inFlight; }
    const content = read();
    if (same(content, saved.content)) return true;
    setStatus('Saving…');
    inFlight = (async () => {
      try {
        const res = await request(draftPath, {
          method: 'PUT', body: content, headers: { 'If-Match': `"${saved.version}"` },
        });
        saved = { version: res.data.version, content };
        missing = res.data.missing;
        if (same(read(), content)) setStatus(savedText(), 'saved');
        else setStatus('Unsaved changes…'); // typed while it was saving: the next save follows
        if (problems.childElementCount) showProblems(false);
        return true;
      } catch (err) {
        if (err.status === 412) {
          await merge();
          again = !conflict; // save the merged draft on the version just read
          return false;
        }
        setStatus(`Not saved: ${err.message}. Trying again in a few seconds; your text stays here.`, 'error');
        timer = window.setTimeout(save, RETRY_AFTER_MS);
        return false;
      } finally {
        inFlight = null;
      }
    })();
    const ok = await inFlight;
    if (again) {
      again = false;
      return save();
    }
    return ok;
  }

  // ---- another tab saved meanwhile: merge, and ask about what both changed ----------------

  async function merge() {
    let theirs;
    try {
      theirs = (await request(draftPath)).data;
    } catch (err) {
      setStatus(`Not saved: ${err.message}.`, 'error');
      return;
    }
    const result = merge3(saved.content, read(), theirs.draft);
    if (!result.conflicts.length) {
      saved = { version: theirs.version, content: theirs.draft };
      write(result.merged);
      const names = result.taken.map(fieldName);
      const note = h('p', { class: 'notice', id: 'merge-note' },
        `Version ${theirs.version} of this draft was saved in another tab or window. `,
        names.length ? `Its changes (${names.join('; ')}) were merged with yours.`
          : 'It matches yours.');
      conflictBox.replaceChildren(note);
      announce(note.textContent);
      return;
    }
    conflict = { theirs: theirs.draft, version: theirs.version, keys: result.conflicts.map((c) => c.key) };
    showConflict(result.conflicts, theirs.version);
    setStatus('Not saved: this draft was also changed elsewhere; choose what to keep.', 'error');
  }

  function show(key, value) {
    if (value === null || value === '') return '(empty)';
    if (value === true) return 'yes';
    if (value === false) return 'no';
    if (key === 'recommendations') {
      const recs = JSON.parse(value);
      return recs.length ? recs.map(recommendationText).join('\n') : '(none)';
    }
    return String(value);
  }

  function showConflict(conflicts, version) {
    const rows = conflicts.map((c, i) => h('tr', {},
      h('th', { scope: 'row' }, fieldName(c.key)),
      h('td', {}, h('pre', {}, show(c.key, c.mine))),
      h('td', {}, h('pre', {}, show(c.key, c.theirs))),
      h('td', {}, h('fieldset', { class: 'keep' }, h('legend', { class: 'visually-hidden' }, `Keep for ${fieldName(c.key)}`),
        h('label', { class: 'inline' }, h('input', { type: 'radio', name: `keep-${i}`, value: 'mine', checked: true }), 'Yours'),
        h('label', { class: 'inline' }, h('input', { type: 'radio', name: `keep-${i}`, value: 'theirs' }), 'Saved elsewhere')))));
    const box = h('section', { class: 'conflict', 'aria-labelledby': 'conflict-title', role: 'alert' },
      h('h3', { id: 'conflict-title', tabindex: -1 }, 'This draft was also changed in another tab or window'),
      h('p', {}, `Version ${version} was saved elsewhere while you edited here. Nothing has been `,
        'overwritten: your text is still in the form. Changes made in one place only are ',
        'merged; choose what to keep where both changed.'),
      h('table', {},
        h('thead', {}, h('tr', {}, ['Field', 'Yours (this tab)', `Saved elsewhere (version ${version})`, 'Keep']
          .map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows)),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'conflict-save', onclick: () => resolve(conflicts, box) }, 'Save with these choices'),
        h('button', { type: 'button', class: 'secondary', id: 'conflict-reload', onclick: () => reload() },
          'Discard my changes and load the saved version')));
    conflictBox.replaceChildren(box);
    announce('Not saved: this draft was also changed in another tab or window.');
  }

  async function resolve(conflicts, box) {
    const keep = conflicts.map((_, i) => box.querySelector(`input[name="keep-${i}"]:checked`).value);
    const { theirs, version } = conflict;
    const result = merge3(saved.content, read(), theirs);
    const flat = result.mergedFlat;
    conflicts.forEach((c, i) => { if (keep[i] === 'theirs') flat[c.key] = c.theirs; });
    conflict = null;
    saved = { version, content: theirs };
    write(unflatten(flat));
    conflictBox.replaceChildren();
    document.getElementById('editor-title').focus();
    if (await save()) announce(`Saved with your choices as version ${saved.version}.`);
  }

  function reload() {
    const { theirs, version } = conflict;
    conflict = null;
    saved = { version, content: theirs };
    write(theirs);
    conflictBox.replaceChildren();
    setStatus(`Loaded the saved version ${version}; your changes were discarded.`, 'saved');
    document.getElementById('editor-title').focus();
  }

  // ---- signing -----------------------------------------------------------------------------

  function showProblems(focus) {
    if (!missing.length) {
      problems.replaceChildren(h('p', { class: 'notice', role: 'status' }, 'Everything needed to sign is filled in.'));
      return;
    }
    problems.replaceChildren(h('div', { class: 'error-summary', role: 'alert' },
      h('h3', { id: 'problems-title', tabindex: -1 }, 'The report cannot be signed yet'),
      h('p', {}, `Still missing (${missing.length}):`),
      missingList(missing)));
    if (focus) problems.querySelector('h3').focus();
  }

  /** Save until reporting holds what the form shows; false on a conflict or an error. */
  async function settle() {
    for (let i = 0; i < 5; i += 1) {
      await save();
      if (conflict) return false;
      if (!inFlight && !timer && same(read(), saved.content)) return true;
      if (timer) return false; // a failed save waits to be retried
    }
    return false;
  }

  async function startSign() {
    if (!(await settle())) {
      if (conflict) document.getElementById('conflict-title')?.focus();
      return;
    }
    if (missing.length) return showProblems(true);
    const version = saved.version;
    const summary = saved.content.assessment.summary;
    modal({
      title: 'Sign this report?',
      initialFocus: '#sign-cancel',
      build: (dialog, close) => {
        const error = h('p', { class: 'error', role: 'alert' });
        const confirm = h('button', { type: 'button', id: 'sign-confirm' }, 'Sign the report');
        confirm.addEventListener('click', async () => {
          confirm.disabled = true;
          error.textContent = '';
          try {
            const result = await sign(version);
            close();
            announce('The report is signed.');
            onSigned(result.report_id);
          } catch (err) {
            confirm.disabled = false;
            if (err.status === 422 && err.missing.length) {
              missing = err.missing;
              close();
              showProblems(true);
            } else if (err.code === 'already_signed') {
              close();
              onSigned(null);
            } else {
              error.textContent = `Not signed: ${err.message}.`;
            }
          }
        });
        return [
          h('p', {}, `You sign version ${version} of this draft as ${signerName}.`),
          h('p', {}, 'Assessment: ', h('strong', {}, summary)),
          h('p', {}, 'A signed report never changes: corrections are addenda. The signed ',
            'report goes to the treating physician.'),
          error,
          h('div', { class: 'actions' }, confirm,
            h('button', { type: 'button', class: 'secondary', id: 'sign-cancel', onclick: close }, 'Cancel')),
        ];
      },
    });
  }

  async function sign(version) {
    // the same key for a retry of the same version: a repeated click never signs twice
    const slot = `secondread.sign.${caseId}.${version}`;
    const key = sessionStorage.getItem(slot) || idempotencyKey();
    sessionStorage.setItem(slot, key);
    const res = await request(`/v1/cases/${encodeURIComponent(caseId)}/report`, {
      method: 'POST', body: { draft_version: version }, headers: { 'Idempotency-Key': key },
    });
    return res.data;
  }

  write(saved.content);
  setStatus(saved.version ? `Draft version ${saved.version} loaded.` : 'No draft saved yet.');

  const flushOnHide = () => { if (document.visibilityState === 'hidden') save(); };
  const warn = (event) => {
    if (conflict || timer || inFlight || !same(read(), saved.content)) {
      event.preventDefault();
      event.returnValue = ''; // the browser asks before the tab closes
    }
  };
  document.addEventListener('visibilitychange', flushOnHide);
  window.addEventListener('beforeunload', warn);
  return {
    flush: save,
    leave: () => {
      document.removeEventListener('visibilitychange', flushOnHide);
      window.removeEventListener('beforeunload', warn);
      save();
    },
  };
}

