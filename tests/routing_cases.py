"""Study descriptions across modalities and the subspecialty the default rules must give them.

Used by the unit tests of the rules (services/routing/tests/test_rules.py) and by the
end-to-end test that sends them through routing on the real stack (tests/e2e/test_routing.py).
Synthetic values only.
"""

from __future__ import annotations

from typing import NamedTuple


class Described(NamedTuple):
    modality: str
    body_part: str
    description: str
    expected: str
    age: str = "052Y"


DESCRIPTIONS: tuple[Described, ...] = (
    # neuro
    Described("MR", "HEAD", "MRI BRAIN WITHOUT AND WITH CONTRAST", "neuro"),
    Described("CT", "HEAD", "CT HEAD WO CONTRAST", "neuro"),
    Described("MR", "", "MR C-SPINE", "neuro"),
    Described("MR", "LSPINE", "MRI LUMBAR SPINE WO", "neuro"),
    Described("CT", "", "CT PERFUSION HEAD STROKE PROTOCOL", "neuro"),
    Described("MR", "", "MR PITUITARY DYNAMIC", "neuro"),
    # head and neck
    Described("CT", "", "CT NECK SOFT TISSUE W CONTRAST", "head_neck"),
    Described("US", "", "US THYROID", "head_neck"),
    Described("CT", "", "CT SINUS WO", "head_neck"),
    Described("MR", "", "MRI ORBITS W WO", "head_neck"),
    Described("CT", "", "CT TEMPORAL BONES", "head_neck"),
    # msk
    Described("MR", "KNEE", "MRI KNEE RIGHT WO", "msk"),
    Described("MR", "", "MR SHOULDER ARTHROGRAM LEFT", "msk"),
    Described("CR", "", "XR WRIST 3 VIEWS", "msk"),
    Described("CT", "", "CT ANKLE FRACTURE PROTOCOL", "msk"),
    Described("DX", "HIP", "XR HIP AP AND LATERAL", "msk"),
    # chest
    Described("CT", "CHEST", "CT CHEST WO CONTRAST", "chest"),
    Described("CT", "", "CTPA PULMONARY EMBOLISM", "chest"),
    Described("DX", "", "XR CHEST PA AND LATERAL", "chest"),
    Described("CT", "", "HRCT LUNGS", "chest"),
    # body
    Described("CT", "ABDOMEN", "CT ABDOMEN PELVIS W CONTRAST", "body"),
    Described("MR", "", "MRI LIVER WITH EOVIST", "body"),
    Described("MR", "", "MRCP", "body"),
    Described("US", "", "US ABDOMEN COMPLETE", "body"),
    Described("MR", "", "MR ENTEROGRAPHY", "body"),
    # breast
    Described("MG", "BREAST", "MAMMO SCREENING BILATERAL", "breast"),
    Described("MG", "", "DIGITAL BREAST TOMOSYNTHESIS", "breast"),
    Described("US", "", "US BREAST LEFT TARGETED", "breast"),
    Described("MR", "", "MRI BREAST BILATERAL W WO", "breast"),
    # cardiac
    Described("CT", "", "CT CORONARY ANGIOGRAPHY", "cardiac"),
    Described("MR", "", "CARDIAC MRI FUNCTION AND VIABILITY", "cardiac"),
    Described("CT", "", "CT CALCIUM SCORING", "cardiac"),
    Described("US", "", "ECHOCARDIOGRAM TRANSTHORACIC", "cardiac"),
    # prostate and GU
    Described("MR", "PROSTATE", "MRI PROSTATE MULTIPARAMETRIC", "prostate_gu"),
    Described("CT", "", "CT UROGRAM", "prostate_gu"),
    Described("US", "", "US RENAL", "prostate_gu"),
    Described("US", "", "US SCROTUM", "prostate_gu"),
    # nuclear medicine
    Described("PT", "", "PET CT SKULL BASE TO THIGH", "nuclear_medicine"),
    Described("NM", "", "NM BONE SCAN WHOLE BODY", "nuclear_medicine"),
    Described("NM", "", "MYOCARDIAL PERFUSION SPECT", "nuclear_medicine"),
    Described("CT", "", "FDG PET CT ONCOLOGY", "nuclear_medicine"),
    # vascular and interventional
    Described("XA", "", "ANGIOGRAPHY LOWER EXTREMITY RUNOFF", "vascular_interventional"),
    Described("CT", "", "CTA AORTA RUNOFF", "vascular_interventional"),
    Described("XA", "", "UTERINE ARTERY EMBOLIZATION", "vascular_interventional"),
    Described("US", "", "US CAROTID DOPPLER", "vascular_interventional"),
    # pediatric: the age decides, whatever the region
    Described("MR", "HEAD", "MRI BRAIN WO", "pediatric", age="007Y"),
    Described("DX", "", "XR BONE AGE", "pediatric", age="011Y"),
    Described("US", "", "US ABDOMEN", "pediatric", age="006M"),
    Described("CT", "CHEST", "CT CHEST WO", "chest", age="018Y"),
    # nothing to go by: general, flagged ambiguous
    Described("OT", "", "OUTSIDE IMAGES", "general"),
    Described("CT", "", "", "general"),
)
