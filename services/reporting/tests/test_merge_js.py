"""The workspace's field-by-field draft merge (web/merge.js), run by Node (installed by make up
for the npm packages): what two tabs changed is kept, and only a field both changed differently
is put to the reader."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from secondread_reporting.pages import WEB

SCRIPT = """
import { merge3, sameDraft, flatten, unflatten } from '%s';
const base = {findings: 'a', statements: [], assessment: {summary: ''}, recommendations: []};
const mine = {findings: 'a', statements: [{number: 1, verdict: 'confirmed', grade: null,
  comment: ''}], assessment: {summary: 'mine'}, recommendations: [{type: 'none'}]};
const theirs = {findings: 'b', statements: [], assessment: {summary: ''},
  recommendations: [{type: 'none'}]};
const both = {...theirs, assessment: {summary: 'theirs'}};
const round = {findings: 'x', statements: [{number: 2, verdict: 'revised', grade: '3b',
  comment: 'c'}], assessment: {diagnosis_changed: true, severity_changed: false,
  staging_changed: null, summary: 's'},
  recommendations: [{type: 'follow_up_imaging', modality: 'CT', interval: '3 months'}]};
console.log(JSON.stringify({
  apart: merge3(base, mine, theirs),
  clash: merge3(base, mine, both),
  // an empty draft from the server equals a form whose fields are all empty
  empty: sameDraft({findings: '', statements: [], assessment: {}, recommendations: []},
    {findings: '', statements: [{number: 1, verdict: null, grade: null, comment: ''}],
     assessment: {diagnosis_changed: null, severity_changed: null, staging_changed: null,
                  summary: ''}, recommendations: []}),
  keyOrder: sameDraft({...base, recommendations: [{type: 'biopsy', target: 't'}]},
    {...base, recommendations: [{target: 't', type: 'biopsy'}]}),
  round: unflatten(flatten(round)),
}));
"""


def run_merge() -> dict[str, object]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: run `make up` (it installs nodejs for the npm packages)")
    done = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT % (WEB / "merge.js").as_uri()],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_changes_to_different_fields_merge_and_the_same_field_is_a_conflict() -> None:
    out = run_merge()
    apart = out["apart"]
    assert isinstance(apart, dict)
    assert apart["conflicts"] == []
    assert sorted(apart["taken"]) == ["findings"]
    merged = apart["merged"]
    assert merged["findings"] == "b"  # theirs
    assert merged["assessment"]["summary"] == "mine"
    assert merged["statements"] == [{"number": 1, "verdict": "confirmed", "grade": None,
                                     "comment": ""}]  # fmt: skip
    assert merged["recommendations"] == [{"type": "none"}]  # both added the same
    clash = out["clash"]
    assert isinstance(clash, dict)
    assert clash["conflicts"] == [{"key": "assessment.summary", "mine": "mine", "theirs": "theirs"}]
    assert clash["merged"]["assessment"]["summary"] == "mine"  # kept until the reader chooses


def test_equal_drafts_compare_equal_and_a_draft_survives_flattening() -> None:
    out = run_merge()
    assert out["empty"] is True and out["keyOrder"] is True
    assert out["round"] == {
        "findings": "x",
        "statements": [{"number": 2, "verdict": "revised", "grade": "3b", "comment": "c"}],
        "assessment": {"diagnosis_changed": True, "severity_changed": False,
                       "staging_changed": None, "summary": "s"},
        "recommendations": [{"type": "follow_up_imaging", "modality": "CT",
                             "interval": "3 months"}],
    }  # fmt: skip
