// A three-way merge of drafts, field by field: what this tab last saved (the base), what it holds
// now (mine) and what another tab or window saved since (theirs). A field changed on one side
// only takes that side; a field changed differently on both sides is a conflict for the reader.
// Pure functions, no DOM.

const ASSESSMENT = ['diagnosis_changed', 'severity_changed', 'staging_changed', 'summary'];

/** JSON with sorted keys, so that equal values compare equal whatever their key order. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value === undefined ? null : value);
}

/** A draft as a flat map of field paths to values. */
export function flatten(draft) {
  const out = { findings: draft.findings || '' };
  for (const s of draft.statements || []) {
    out[`statements.${s.number}.verdict`] = s.verdict ?? null;
    out[`statements.${s.number}.grade`] = s.grade ?? null;
    out[`statements.${s.number}.comment`] = s.comment || '';
  }
  const a = draft.assessment || {};
  for (const name of ASSESSMENT) {
    out[`assessment.${name}`] = name === 'summary' ? a.summary || '' : a[name] ?? null;
  }
  out.recommendations = canonical(draft.recommendations || []);
  return out;
}

function emptyValue(key) {
  return key.endsWith('.comment') || key === 'findings' || key === 'assessment.summary' ? '' : null;
}

/** The draft a flat map describes. */
export function unflatten(flat) {
  const numbers = new Set();
  for (const key of Object.keys(flat)) {
    const m = key.match(/^statements\.(\d+)\./);
    if (m) numbers.add(Number(m[1]));
  }
  const get = (key) => (key in flat ? flat[key] : emptyValue(key));
  const assessment = {};
  for (const name of ASSESSMENT) assessment[name] = get(`assessment.${name}`);
  return {
    findings: get('findings'),
    statements: [...numbers].sort((a, b) => a - b).map((n) => ({
      number: n,
      verdict: get(`statements.${n}.verdict`),
      grade: get(`statements.${n}.grade`),
      comment: get(`statements.${n}.comment`),
    })),
    assessment,
    recommendations: JSON.parse(get('recommendations') || '[]'),
  };
}

/**
 * Merge ``mine`` and ``theirs``, both edited from ``base``. Returns {merged, conflicts, taken}:
 * ``merged`` keeps mine where both changed; ``conflicts`` lists those fields
 * ({key, mine, theirs}); ``taken`` names the fields that came from theirs.
 */
export function merge3(base, mine, theirs) {
  const b = flatten(base);
  const m = flatten(mine);
  const t = flatten(theirs);
  const merged = {};
  const conflicts = [];
  const taken = [];
  const keys = new Set([...Object.keys(b), ...Object.keys(m), ...Object.keys(t)]);
  for (const key of keys) {
    const bv = key in b ? b[key] : emptyValue(key);
    const mv = key in m ? m[key] : emptyValue(key);
    const tv = key in t ? t[key] : emptyValue(key);
    if (mv === tv) merged[key] = mv;
    else if (mv === bv) { merged[key] = tv; taken.push(key); }
    else if (tv === bv) merged[key] = mv;
    else { merged[key] = mv; conflicts.push({ key, mine: mv, theirs: tv }); }
  }
  return { merged: unflatten(merged), mergedFlat: merged, conflicts, taken };
}

/** A reader's name for a field path. */
export function fieldName(key) {
  if (key === 'findings') return 'Findings';
  if (key === 'recommendations') return 'Recommendations';
  let m = key.match(/^statements\.(\d+)\.(verdict|grade|comment)$/);
  if (m) return `Statement ${m[1]}: ${{ verdict: 'verdict', grade: 'RADPEER grade', comment: 'comment' }[m[2]]}`;
  m = key.match(/^assessment\.(\w+)$/);
  if (m) {
    return {
      diagnosis_changed: 'Assessment: does the diagnosis change?',
      severity_changed: 'Assessment: does the severity change?',
      staging_changed: 'Assessment: does the staging change?',
      summary: 'Assessment: summary line',
    }[m[1]] || key;
  }
  return key;
}

/** Whether two drafts say the same (an absent field equals an empty one). */
export function sameDraft(a, b) {
  const x = flatten(a);
  const y = flatten(b);
  for (const key of new Set([...Object.keys(x), ...Object.keys(y)])) {
    const xv = key in x ? x[key] : emptyValue(key);
    const yv = key in y ? y[key] : emptyValue(key);
    if (xv !== yv) return false;
  }
  return true;
}
