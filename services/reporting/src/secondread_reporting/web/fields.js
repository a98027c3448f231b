// Form parts shared by the report editor and the addendum form: the assessment and the typed
// recommendations. Each returns {element, read(), write(value)}; ``onChange`` runs on every edit.
import { h } from './dom.js';

export const CHANGES = [
  ['diagnosis_changed', 'Does the diagnosis change?'],
  ['severity_changed', 'Does the severity change?'],
  ['staging_changed', 'Does the staging change?'],
];

/** Yes/no radios (a fieldset) for ``name``; ids ``<prefix><name>-yes`` and ``-no``. */
function yesNo(prefix, name, question, onChange) {
  const id = `${prefix}${name}`;
  const radio = (value, text) => h('label', { class: 'inline', for: `${id}-${value}` },
    h('input', { type: 'radio', name: id, id: `${id}-${value}`, value, onchange: onChange }), text);
  return h('fieldset', { class: 'yesno-group' }, h('legend', {}, question),
    h('div', { class: 'yesno' }, radio('yes', 'Yes'), radio('no', 'No')));
}

export function assessmentFields(prefix, onChange) {
  const summary = h('input', {
    type: 'text', id: `${prefix}summary`, maxlength: 300, oninput: onChange,
    'aria-describedby': `${prefix}summary-hint`,
  });
  const element = h('div', {},
    h('div', { class: 'yesno' }, CHANGES.map(([name, q]) => yesNo(prefix, name, q, onChange))),
    h('label', { for: `${prefix}summary` }, 'Summary line'),
    h('p', { class: 'hint', id: `${prefix}summary-hint` },
      'One line that the treating physician reads first, e.g. "Upgraded: suspicious for ',
      'primary lung cancer".'),
    summary);
  const choice = (name) => {
    const checked = element.querySelector(`input[name="${prefix}${name}"]:checked`);
    return checked ? checked.value === 'yes' : null;
  };
  return {
    element,
    read: () => ({
      diagnosis_changed: choice('diagnosis_changed'),
      severity_changed: choice('severity_changed'),
      staging_changed: choice('staging_changed'),
      summary: summary.value,
    }),
    write: (a = {}) => {
      for (const [name] of CHANGES) {
        for (const value of ['yes', 'no']) {
          const input = element.querySelector(`#${prefix}${name}-${value}`);
          input.checked = a[name] === (value === 'yes');
        }
      }
      if (summary.value !== (a.summary || '')) summary.value = a.summary || '';
    },
  };
}

/** The recommendation types of the report model, with the fields each has. */
export const RECOMMENDATION_TYPES = {
  follow_up_imaging: {
    label: 'Follow-up imaging',
    fields: [['modality', 'Modality', 'e.g. CT, MR, PET-CT'], ['interval', 'Interval', 'e.g. 3 months']],
  },
  biopsy: { label: 'Biopsy', fields: [['target', 'Target (optional)', 'e.g. right upper lobe nodule']] },
  referral: { label: 'Referral', fields: [['specialty', 'Specialty', 'e.g. thoracic surgery']] },
  additional_views: { label: 'Additional views', fields: [['views', 'Views (optional)', '']] },
  future_comparison: {
    label: 'Comparison with a future study', fields: [['note', 'Note (optional)', '']],
  },
  none: { label: 'No further action', fields: [] },
};

export function recommendationText(r) {
  const type = RECOMMENDATION_TYPES[r.type];
  if (!type) return r.type;
  const parts = type.fields.map(([name]) => r[name]).filter(Boolean);
  return parts.length ? `${type.label}: ${parts.join(', ')}` : type.label;
}

export function recommendationsList(prefix, onChange) {
  const list = h('div', { class: 'recommendation-list' });
  const add = h('button', {
    type: 'button', class: 'secondary', id: `${prefix}add-recommendation`,
    onclick: () => { addRow({ type: 'follow_up_imaging' }, true); onChange(); },
  }, 'Add a recommendation');
  const element = h('div', {}, list, h('div', { class: 'actions' }, add));

  function renumber() {
    [...list.children].forEach((row, i) => {
      row.querySelector('.rec-number').textContent = `Recommendation ${i + 1}`;
      row.dataset.index = String(i);
      row.querySelectorAll('[data-field]').forEach((el) => {
        el.id = `${prefix}rec-${i}-${el.dataset.field}`;
        const label = row.querySelector(`label[data-for="${el.dataset.field}"]`);
        if (label) label.htmlFor = el.id;
      });
      row.querySelector('.remove').setAttribute('aria-label', `Remove recommendation ${i + 1}`);
    });
  }

  function fieldsFor(row, rec) {
    const box = row.querySelector('.fields');
    box.replaceChildren();
    for (const [name, label, placeholder] of RECOMMENDATION_TYPES[rec.type].fields) {
      box.append(h('div', {},
        h('label', { 'data-for': name }, label),
        h('input', {
          type: 'text', 'data-field': name, value: rec[name] || '', placeholder: placeholder || null,
          oninput: onChange,
        })));
    }
    if (!RECOMMENDATION_TYPES[rec.type].fields.length) {
      box.append(h('p', { class: 'hint' }, 'Nothing to fill in.'));
    }
  }

  function addRow(rec, focus) {
    const type = h('select', {
      'data-field': 'type',
      onchange: () => { fieldsFor(row, { type: type.value }); renumber(); onChange(); },
    }, Object.entries(RECOMMENDATION_TYPES).map(([value, t]) => h('option', { value }, t.label)));
    type.value = rec.type;
    const row = h('fieldset', { class: 'recommendation' },
      h('legend', { class: 'rec-number' }),
      h('div', {}, h('label', { 'data-for': 'type' }, 'Type'), type),
      h('div', { class: 'fields' }),
      h('button', {
        type: 'button', class: 'secondary danger remove',
        onclick: () => { row.remove(); renumber(); onChange(); add.focus(); },
      }, 'Remove'));
    list.append(row);
    fieldsFor(row, rec);
    renumber();
    if (focus) type.focus();
  }

  const read = () => [...list.children].map((row) => {
    const rec = { type: row.querySelector('[data-field=type]').value };
    row.querySelectorAll('.fields [data-field]').forEach((el) => { rec[el.dataset.field] = el.value; });
    return rec;
  });

  return {
    element,
    read,
    write: (recs = []) => {
      if (JSON.stringify(read()) === JSON.stringify(recs)) return;  // keep the caret where it is
      list.replaceChildren();
      recs.forEach((r) => addRow(r, false));
    },
  };
}
