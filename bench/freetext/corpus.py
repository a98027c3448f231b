"""A synthetic radiology corpus with planted identifiers, for bench/freetext and the tests.

Every report and question is assembled from sentence templates with slots. A slot is either a
planted identifier (its category recorded with its offsets) or clinical vocabulary that must
survive de-identification. All people, places and numbers are invented here: the names are
drawn from short lists of common given names and surnames, the places and numbers are made up,
and nothing is read from outside. The corpus is generated, never stored on disk.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

CATEGORIES = ("names", "dates", "locations", "identifiers", "contacts", "ages")

GIVEN = (
    "Sarah", "Michael", "Anna", "James", "Fatima", "Luca", "Priya", "Tomasz", "Ingrid", "Kwame",
    "Mei", "Diego", "Olga", "Samuel", "Aisha", "Henrik", "Chloe", "Rafael", "Yuki", "Nadia",
)  # fmt: skip
FAMILY = (
    "Whitfield", "Okonkwo", "Lindqvist", "Ferreira", "Nakamura", "Kowalski", "Haddad",
    "Brennan", "Castellano", "Abernathy", "Vandermeer", "Oyelaran", "Petrakis", "Szabo",
    "Moreau", "Tanaka", "Delgado", "Fitzgerald", "Rasmussen", "O'Sullivan",
)  # fmt: skip
HYPHENATED = ("Dupont-Lefevre", "Garcia-Lopez", "Smith-Hartley", "Nguyen-Tran", "Ross-Whyte")
FACILITIES = (
    "Riverside Imaging Center", "Lakeside Clinic", "St. Aldric Hospital",
    "Northfield Medical Center", "Harbor View Radiology Associates", "Maple Grove Hospital",
    "Westbrook University Hospital", "Cedar Hill Diagnostics",
)  # fmt: skip
STREETS = ("Harbor Blvd", "Elm Street", "Oakridge Avenue", "Mill Road", "Chestnut Lane")
CITIES = (
    ("Springfield", "MA", "01103"), ("Bridgeport", "CT", "06604"), ("Madison", "WI", "53703"),
    ("Eugene", "OR", "97401"), ("Albany", "NY", "12207"), ("Boulder", "CO", "80302"),
)  # fmt: skip
RELATIONS = ("husband", "wife", "daughter", "son", "sister", "mother")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip

CLINICAL = (
    "Hodgkin lymphoma", "non-Hodgkin lymphoma", "Baker cyst", "Bosniak IIF", "Chiari I",
    "Paget disease", "Wilms tumor", "Crohn disease", "Alzheimer disease", "Schmorl nodes",
    "Graves disease", "PI-RADS 4", "BI-RADS 4", "LI-RADS 3", "Lung-RADS 4A", "T2N0M0",
    "Fleischner", "tamoxifen", "right upper lobe", "left kidney", "8 mm", "L4-L5",
)  # fmt: skip

# Sentences of clinical text without identifiers (padding to realistic length).
FILLER = (
    "The lungs are otherwise clear without consolidation or effusion.",
    "No suspicious osseous lesion is identified.",
    "The liver, spleen and pancreas are unremarkable in size and attenuation.",
    "There is mild degenerative disc disease at L4-L5 with a small Schmorl nodes pattern.",
    "Heart size is normal and there is no pericardial effusion.",
    "The adrenal glands are normal. No hydronephrosis.",
    "Background parenchymal enhancement is minimal and symmetric.",
    "Comparison is made with the prior examination where available.",
    "Findings were discussed with the referring team by telephone.",
    "Recommend follow-up in accordance with Fleischner guidelines.",
    "The visualized bowel loops are of normal caliber without wall thickening or obstruction.",
    "No enlarged mediastinal, hilar or axillary lymph nodes by size criteria.",
    "The urinary bladder is partially distended and grossly unremarkable.",
    "Small hiatal hernia. Scattered colonic diverticula without diverticulitis.",
    "Atherosclerotic calcification of the aorta and coronary arteries is moderate.",
    "The thyroid gland is homogeneous without a dominant nodule.",
)  # fmt: skip


@dataclass
class Report:
    """One text with its planted identifiers (``gold``: start, end, category)."""

    text: str
    gold: list[tuple[int, int, str]] = field(default_factory=list)
    clinical: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.gold: list[tuple[int, int, str]] = []
        self.clinical: list[str] = []
        self.length = 0

    def text(self, s: str) -> None:
        self.parts.append(s)
        self.length += len(s)

    def phi(self, s: str, category: str) -> None:
        self.gold.append((self.length, self.length + len(s), category))
        self.text(s)

    def term(self, s: str) -> None:
        self.clinical.append(s)
        self.text(s)

    def build(self) -> Report:
        return Report("".join(self.parts), self.gold, self.clinical)


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28)
    forms = (
        f"{d} {MONTHS[m - 1]} {y}",
        f"{MONTHS[m - 1]} {d}, {y}",
        f"{m}/{d}/{y % 100:02d}",
        f"{m}/{d}/{y}",
        f"{y}-{m:02d}-{d:02d}",
        f"{MONTHS[m - 1]} {y}",
        f"{d:02d}.{m:02d}.{y}",
        f"{MONTHS[m - 1][:3]} {d}, {y} at {rng.randint(7, 18)}:{rng.choice(('05', '30', '45'))}",
    )
    return rng.choice(forms)


def _phone(rng: random.Random) -> str:
    a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(1000, 9999)
    return rng.choice((f"{a}-{b}-{c}", f"({a}) {b}-{c}", f"+44 20 {b}1 {c}", f"{a}.{b}.{c}"))


def _person(rng: random.Random) -> str:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY + HYPHENATED)
    return rng.choice((f"{given} {family}", f"{family}, {given}", f"{given[0]}. {family}"))


def report(rng: random.Random, index: int) -> Report:
    """One synthetic report (odd ``index``) or clinical question (even), about 2,000 or 500
    characters, every category planted at least once in a report."""
    b = _Builder()
    city, state, zip_code = rng.choice(CITIES)
    if index % 2 == 0:  # a clinical question with a covering note
        b.text("Referred by Dr. ")
        b.phi(_person(rng), "names")
        b.text(" (mobile ")
        b.phi(_phone(rng), "contacts")
        b.text("): is the ")
        b.term(rng.choice(("Bosniak IIF", "Baker cyst", "PI-RADS 4")))
        b.text(" lesion seen on ")
        b.phi(_date(rng), "dates")
        b.text(" at ")
        b.phi(rng.choice(FACILITIES), "locations")
        b.text(" progressing? The patient's ")
        b.text(rng.choice(RELATIONS) + " ")
        b.phi(rng.choice(GIVEN), "names")
        b.text(" can be reached at ")
        b.phi(f"{rng.choice(GIVEN).lower()}.{rng.choice(FAMILY).lower().replace(chr(39), '')}"
              f"@example.org", "contacts")  # fmt: skip
        b.text(". History of ")
        b.term(rng.choice(("Hodgkin lymphoma", "Crohn disease", "Graves disease")))
        b.text(", treated with ")
        b.term("tamoxifen")
        b.text(f". She is {rng.randint(40, 85)} years old. MRN ")
        b.phi(f"{rng.randint(10**7, 10**8 - 1)}", "identifiers")
        b.text(".")
        return b.build()

    b.text("EXAMINATION: CT chest, abdomen and pelvis with contrast.\n")
    b.text("CLINICAL HISTORY: ")
    b.phi(f"{rng.randint(90, 104)}", "ages")  # the number identifies; "year old" does not
    b.text(" year old with ")
    b.term(rng.choice(("non-Hodgkin lymphoma", "Wilms tumor", "Paget disease")))
    b.text(", referred by ")
    b.phi(f"Dr {rng.choice(FAMILY).lower()}", "names")
    b.text(" of ")
    b.phi(rng.choice(FACILITIES), "locations")
    b.text(", ")
    street_no = rng.randint(10, 4999)
    b.phi(f"{street_no} {rng.choice(STREETS)}, {city}, {state} {zip_code}", "locations")
    b.text(". Fax ")
    b.phi(_phone(rng), "contacts")
    b.text(".\nCOMPARISON: ")
    b.phi(_date(rng), "dates")
    b.text(" and ")
    b.phi(_date(rng), "dates")
    b.text(", accession ")
    b.phi(f"A{rng.randint(10**6, 10**7 - 1)}", "identifiers")
    b.text(".\nFINDINGS: ")
    for _ in range(5):
        b.text(rng.choice(FILLER) + " ")
    b.text("There is a ")
    b.term("8 mm")
    b.text(" nodule in the ")
    b.term("right upper lobe")
    b.text(", ")
    b.term("Lung-RADS 4A")
    b.text(". A ")
    b.term("Bosniak IIF")
    b.text(" cyst arises from the ")
    b.term("left kidney")
    b.text(". ")
    b.term("Baker cyst")
    b.text(" in the right popliteal fossa. Known ")
    b.term("Chiari I")
    b.text(" malformation. Prostate lesion ")
    b.term("PI-RADS 4")
    b.text(", staged ")
    b.term("T2N0M0")
    b.text(". Liver observation ")
    b.term("LI-RADS 3")
    b.text(". ")
    while b.length < 1560:  # reports of about 2,000 characters
        b.text(rng.choice(FILLER) + " ")
    b.text("\nNurse ")
    b.phi(f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}", "names")
    b.text(" at ")
    b.phi(rng.choice(FACILITIES), "locations")
    b.text(" sent the outside images on ")
    b.phi(_date(rng), "dates")
    b.text(" from ")
    b.phi(f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "contacts")
    b.text("; portal ")
    b.phi(f"https://portal.{rng.choice(('aldric', 'northfield', 'cedarhill'))}-health.org/"
          f"s/{rng.randint(1000, 9999)}", "contacts")  # fmt: skip
    b.text(". Her ")
    b.text(rng.choice(RELATIONS))
    b.text(" ")
    b.phi(rng.choice(GIVEN).lower(), "names")
    b.text(" called on ")
    b.phi(_date(rng), "dates")
    b.text(". Account ")
    b.phi(f"{rng.randint(1000, 9999)}-{rng.randint(10, 99)}", "identifiers")
    b.text(", SSN ")
    b.phi(f"{rng.randint(100, 899)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
          "identifiers")  # fmt: skip
    b.text(", pacemaker serial ")
    b.phi(f"PM{rng.randint(10**5, 10**6 - 1)}X", "identifiers")
    b.text(".\nIMPRESSION: ")
    b.term(rng.choice(("BI-RADS 4", "Alzheimer disease", "Graves disease")))
    b.text(". Discussed with ")
    b.phi(_person(rng), "names")
    b.text(", MD, on ")
    b.phi(_date(rng), "dates")
    b.text(". Dictated by ")
    b.phi(f"{rng.choice(GIVEN)} {rng.choice(HYPHENATED)}", "names")
    b.text(" MD.")
    return b.build()


def corpus(n: int = 48, seed: int = 20261201) -> list[Report]:
    """``n`` reports and questions (half each), deterministic for ``seed``."""
    rng = random.Random(seed)
    return [report(rng, i) for i in range(n)]


# --------------------------------------------------------------------------- held out
# Written after the detector was configured, and never tuned on: other phrasings, other
# names, other places. Reported beside the main set so that tuning to it shows.
_HELD_OUT: tuple[tuple[tuple[str, str], ...], ...] = (
    (("Pt seen by ", ""), ("Dr Hannah Kessler", "names"), (" and her colleague ", ""),
     ("Dr. Rohan Mehta", "names"), (" on ", ""), ("Oct 3 2022", "dates"),
     (". Nodular opacity in the lingula, 6 mm, Fleischner category low.", "")),
    (("Comparison made with outside study from ", ""), ("Saint Brigid's Hospital", "locations"),
     (", dated ", ""), ("07/21/2021", "dates"), (". Stable Bosniak IIF cyst.", "")),
    (("Daughter ", ""), ("Lucia", "names"), (" (", ""), ("+1 415 555 0187", "contacts"),
     (") requests that results go to ", ""), ("l.moretti@mailbox.example.com", "contacts"),
     (". History of Crohn disease.", "")),
    (("The study was performed at ", ""), ("Pinecrest Imaging", "locations"), (", ", ""),
     ("77 Orchard Road", "locations"), (", ", ""), ("Hartford, CT 06103", "locations"),
     (". PI-RADS 3 lesion in the left peripheral zone.", "")),
    (("Ordering provider: ", ""), ("Emeka Chukwu", "names"), (", NPI ", ""),
     ("1457382910", "identifiers"), (". Reason: staging of Hodgkin lymphoma.", "")),
    (("CD received 2 weeks ago from ", ""), ("Brookside Medical Center", "locations"),
     ("; accession no. ", ""), ("RX-2291-4471", "identifiers"), (". Baker cyst unchanged.", "")),
    (("Mr. ", ""), ("Jonas Eriksson", "names"), (", ", ""), ("96", "ages"),
     (", nursing home resident, fall on ", ""), ("5 Jan 2024", "dates"),
     (". No acute fracture. Schmorl nodes at T11.", "")),
    (("Please forward to the referring clinic fax ", ""), ("(212) 555-0134", "contacts"),
     (" attention Nurse ", ""), ("Patel", "names"), (". LI-RADS 4 observation, segment VII.", "")),
    (("Images uploaded via ", ""), ("www.northgate-imaging.com/upload", "contacts"),
     (" from workstation ", ""), ("172.16.40.12", "contacts"), (". Chiari I malformation.", "")),
    (("Patient's son ", ""), ("Malik", "names"), (" reports she was treated at ", ""),
     ("Mercy General Hospital", "locations"), (" in ", ""), ("June 2019", "dates"),
     (" for Graves disease.", "")),
    (("Insurance member ID ", ""), ("XKT448120937", "identifiers"),
     ("; medical record number ", ""), ("00482913", "identifiers"),
     (". BI-RADS 5 mass, left breast 2 o'clock.", "")),
    (("Discussed by phone with ", ""), ("Dr. Okafor-Williams", "names"), (" at ", ""),
     ("4:15 pm on 11/30/2023", "dates"), (". Paget disease of the right hemipelvis.", "")),
)  # fmt: skip


def held_out() -> list[Report]:
    """The held-out texts (12), with their planted identifiers."""
    out = []
    for parts in _HELD_OUT:
        b = _Builder()
        for text, category in parts:
            if category:
                b.phi(text, category)
            else:
                b.text(text)
        out.append(b.build())
    return out
