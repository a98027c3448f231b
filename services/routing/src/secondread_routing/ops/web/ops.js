// The operations page: sign in (keycloak-js, authorization code + PKCE S256), then show the
// operator API's views and refresh them. Text goes in with textContent only.
import Keycloak from './keycloak.js'

const cfg = JSON.parse(document.body.dataset.config)
const byId = (id) => document.getElementById(id)
const kc = new Keycloak(cfg.oidc)
const KNOWN_STATES = ['received', 'deidentified', 'quarantined', 'unassigned', 'assigned',
  'signed', 'notified', 'notification_failed', 'dead_lettered']
let loading = false
let pending = null

function el (tag, props = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') node.className = v
    else if (k === 'text') node.textContent = v
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'datetime' || k === 'title') node.setAttribute(k, v)
    else node[k] = v
  }
  for (const c of children) node.append(c)
  return node
}

function duration (seconds) {
  const s = Math.abs(Math.round(seconds))
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h} h ${m % 60} min`
  return `${Math.floor(h / 24)} d ${h % 24} h`
}

function stamp (iso) {
  const d = new Date(iso)
  const pad = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

function timeCell (iso) {
  return el('td', {}, el('time', { datetime: iso, text: stamp(iso) }))
}

function badge (value, label) {
  return el('span', { class: `badge ${value}`, text: label || value })
}

function showError (message) {
  const box = byId('error')
  box.hidden = !message
  box.className = 'error'
  box.textContent = message || ''
}

function showNotice (message) {
  const box = byId('error')
  box.hidden = false
  box.className = 'notice'
  box.textContent = message
}

async function api (path, options = {}) {
  try {
    await kc.updateToken(30)
  } catch {
    await kc.login()
    return new Promise(() => {})
  }
  const res = await fetch(cfg.api + path, {
    ...options,
    headers: { Authorization: `Bearer ${kc.token}`, Accept: 'application/json' }
  })
  const body = await res.json().catch(() => null)
  if (!res.ok) {
    const err = new Error(body?.error?.message || `the server answered ${res.status}`)
    err.status = res.status
    throw err
  }
  return body
}

function fill (table, rows, empty, columns) {
  const body = table.tBodies[0]
  body.replaceChildren()
  if (!rows.length) {
    body.append(el('tr', {}, el('td', { class: 'empty', colSpan: columns, text: empty })))
    return
  }
  for (const r of rows) body.append(r)
}

function caseCell (c) {
  return el('td', {}, el('code', { text: c.case_id }))
}

function dueCell (c) {
  if (!c.due_at) return el('td', { text: '—' })
  const left = c.due_in_seconds
  const words = left < 0 ? `overdue by ${duration(left)}` : `in ${duration(left)}`
  return el('td', {}, el('time', { datetime: c.due_at, text: stamp(c.due_at) }), ` (${words})`)
}

const STAGES = {}

function renderCounts (overview) {
  for (const c of [...overview.cases, ...overview.stuck, ...overview.at_risk]) STAGES[c.state] = c.stage
  const states = Object.keys(overview.counts).sort()
  fill(byId('counts'), states.map((s) => el('tr', {},
    el('td', {}, badge(s)), el('td', { text: STAGES[s] || '' }),
    el('td', { class: 'num', text: String(overview.counts[s]) }))),
  'No cases yet.', 3)
  const select = byId('state')
  const wanted = [...new Set([...KNOWN_STATES, ...states])]
  const have = [...select.options].slice(1).map((o) => o.value)
  if (wanted.join() !== have.join()) {
    const chosen = select.value
    select.replaceChildren(el('option', { value: '', text: 'All states' }),
      ...wanted.map((s) => el('option', { value: s, text: `${s} (${overview.counts[s] || 0})` })))
    select.value = chosen
  } else {
    for (const o of [...select.options].slice(1)) o.textContent = `${o.value} (${overview.counts[o.value] || 0})`
  }
}

function renderCases (overview) {
  byId('risk-help').textContent = 'Not signed yet, and overdue or due within ' +
    `${overview.at_risk_hours} h; soonest due first.`
  fill(byId('at-risk'), overview.at_risk.map((c) => el('tr', { 'data-case': c.case_id },
    caseCell(c), el('td', {}, badge(c.risk, c.risk === 'overdue' ? 'overdue' : 'due soon')),
    dueCell(c), el('td', {}, badge(c.state)), el('td', { text: c.priority || '—' }),
    el('td', { text: c.subspecialty || '—' }), el('td', { text: c.reader || '—' }))),
  'No case is at risk of its due time.', 7)
  fill(byId('stuck-cases'), overview.stuck.map((c) => el('tr', { 'data-case': c.case_id },
    caseCell(c), el('td', {}, badge(c.state)), el('td', { text: c.stage }),
    el('td', { text: duration(c.idle_seconds) }), el('td', { text: c.producer }))),
  `No case is stuck (no progress for ${overview.stuck_after_minutes} min).`, 5)
  fill(byId('cases'), overview.cases.map((c) => el('tr', { 'data-case': c.case_id },
    caseCell(c), el('td', {}, badge(c.state)), el('td', { text: c.stage }),
    el('td', { text: duration(c.age_seconds) }), timeCell(c.updated_at),
    el('td', { text: c.producer }), el('td', { text: c.detail || '—' }), dueCell(c))),
  overview.state ? `No case is ${overview.state}.` : 'No cases yet.', 8)
}

function letterKey (d) {
  return `${d.topic}/${d.partition}/${d.offset}`
}

function renderLetters (overview) {
  fill(byId('letters'), overview.letters.map((d) => {
    let action
    if (d.replay) {
      action = el('td', {}, badge('replayed', 'replayed'),
        ` ${stamp(d.replay.published_at)} by ${d.replay.operator}`)
    } else {
      action = el('td', {}, el('button', {
        type: 'button',
        class: 'replay',
        text: 'Replay',
        'data-focus-key': `replay:${letterKey(d)}`,
        'aria-label': `Replay the dead letter of case ${d.case_id} from ${d.source_topic}`,
        onclick: () => confirmReplay(d)
      }))
    }
    const source = el('td', {}, el('code', { text: d.source_topic }))
    if (d.phi_zone) source.append(' ', badge('phi', 'PHI zone'))
    return el('tr', { 'data-case': d.case_id, 'data-letter': letterKey(d) },
      timeCell(d.dead_lettered_at), el('td', {}, el('code', { text: d.case_id || '—' })),
      source, el('td', { text: d.service || '—' }),
      el('td', { class: 'num', text: d.attempts === null ? '—' : String(d.attempts) }),
      el('td', { class: 'reason', text: d.reason || '—' }),
      el('td', {}, el('code', { text: `${d.topic} ${d.partition}:${d.offset}` })), action)
  }), 'No dead letters.', 8)
  byId('dlq-h').textContent = `Dead letters (${overview.not_replayed} not replayed, ` +
    `${overview.total} in all)`
}

function confirmReplay (letter) {
  pending = letter
  byId('confirm-text').textContent = `Case ${letter.case_id}: dead-lettered by ` +
    `${letter.service || 'a service'} after ${letter.attempts ?? '?'} attempt(s) with the reason ` +
    `“${letter.reason || 'none given'}”. It will be published again on ${letter.source_topic}, ` +
    'once, for the service to process it.'
  const dialog = byId('confirm')
  dialog.returnValue = ''
  dialog.showModal()
  byId('confirm-cancel').focus()
}

async function replay (letter) {
  try {
    const out = await api(`/dead-letters/${encodeURIComponent(letter.topic)}/${letter.partition}/` +
      `${letter.offset}/replay`, { method: 'POST' })
    const r = out.letter.replay
    showNotice(out.status === 'replayed'
      ? `Replayed the dead letter of case ${letter.case_id} onto ${r.target_topic}.`
      : `Already replayed at ${stamp(r.published_at)} by ${r.operator}; not sent again.`)
  } catch (err) {
    showError(`Replay failed: ${err.message}`)
  }
  await refresh()
  const row = document.querySelector(`tr[data-letter="${CSS.escape(letterKey(letter))}"]`)
  if (row) row.lastElementChild.setAttribute('tabindex', '-1')
  row?.lastElementChild.focus()
}

async function refresh () {
  if (loading) return
  loading = true
  const params = new URLSearchParams({ limit: '100' })
  const state = byId('state').value
  if (state) params.set('state', state)
  const stuck = Number(byId('stuck').value)
  if (stuck > 0) params.set('stuck_after_minutes', String(stuck))
  try {
    const [cases, letters] = await Promise.all([api(`/cases?${params}`), api('/dead-letters?limit=100')])
    const focused = document.activeElement?.dataset?.focusKey
    renderCounts(cases)
    renderCases(cases)
    renderLetters(letters)
    if (focused) document.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus()
    byId('updated').textContent = `Updated at ${stamp(cases.generated_at)} · refreshes every ` +
      `${cfg.refreshSeconds} s · ${cases.total} cases`
    if (!byId('error').classList.contains('notice')) showError(null)
  } catch (err) {
    showError(err.status === 403 || err.status === 401 ? err.message : `Could not load: ${err.message}`)
    byId('updated').textContent = `Update failed at ${stamp(new Date().toISOString())}; ` +
      'trying again shortly.'
  } finally {
    loading = false
  }
}

async function main () {
  byId('stuck').value = String(cfg.stuckMinutes)
  try {
    await kc.init({ onLoad: 'login-required', pkceMethod: 'S256', checkLoginIframe: false })
  } catch (err) {
    showError(`Sign-in failed: ${err?.message || err?.error || 'the identity provider did not answer'}`)
    byId('who').textContent = 'Not signed in'
    return
  }
  const who = kc.tokenParsed?.preferred_username || 'unknown user'
  byId('who').textContent = `Signed in as ${who}`
  const out = byId('signout')
  out.hidden = false
  out.addEventListener('click', () => kc.logout({ redirectUri: location.href }))
  byId('filters').addEventListener('submit', (ev) => {
    ev.preventDefault()
    if (!byId('filters').reportValidity()) return
    refresh()
  })
  byId('state').addEventListener('change', () => refresh())
  byId('refresh').addEventListener('click', () => refresh())
  byId('confirm').addEventListener('close', () => {
    const letter = pending
    pending = null
    if (letter && byId('confirm').returnValue === 'replay') replay(letter)
  })
  await refresh()
  setInterval(refresh, cfg.refreshSeconds * 1000)
}

main()
