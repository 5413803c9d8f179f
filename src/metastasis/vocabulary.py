"""The words of the interface contract: organs, subtypes, modalities, purposes, event kinds.

Every module refers to these tuples so that the integer codes used inside the engine and the strings
written to the tables can never drift apart: the code of a word is its index in its tuple.
"""

from __future__ import annotations

ORGANS: tuple[str, ...] = (
    "breast",
    "regional_nodes",
    "bone",
    "lung",
    "liver",
    "brain",
    "distant_nodes",
    "other",
)
DISTANT_ORGANS: tuple[str, ...] = ORGANS[2:]
ORGAN_CODE: dict[str, int] = {name: i for i, name in enumerate(ORGANS)}
N_ORGANS = len(ORGANS)
FIRST_DISTANT = ORGAN_CODE["bone"]

SUBTYPES: tuple[str, ...] = ("luminal_a", "luminal_b", "luminal_her2", "her2_enriched", "triple_negative")
SUBTYPE_CODE: dict[str, int] = {name: i for i, name in enumerate(SUBTYPES)}
#: Oestrogen receptor status of each subtype (MODEL 1).
SUBTYPE_ER_POSITIVE: tuple[bool, ...] = (True, True, True, False, False)
SUBTYPE_HER2_POSITIVE: tuple[bool, ...] = (False, False, True, True, False)

MODALITIES: tuple[str, ...] = (
    "clinical_exam",
    "mammography",
    "chest_xray",
    "ct",
    "liver_ultrasound",
    "bone_scan",
    "mri_brain",
    "mri_liver",
    "pet_ct",
)
MODALITY_CODE: dict[str, int] = {name: i for i, name in enumerate(MODALITIES)}

#: Which organs each modality examines (MODEL 4, "Coverage").
COVERAGE: dict[str, tuple[str, ...]] = {
    "clinical_exam": ("breast", "regional_nodes"),
    "mammography": ("breast", "regional_nodes"),
    "chest_xray": ("lung",),
    "ct": ("lung", "liver", "distant_nodes", "bone", "other"),
    "liver_ultrasound": ("liver",),
    "bone_scan": ("bone",),
    "mri_brain": ("brain",),
    "mri_liver": ("liver",),
    "pet_ct": ("breast", "regional_nodes", "bone", "lung", "liver", "distant_nodes", "other"),
}

ORIGINS: tuple[str, ...] = ("primary", "residual", "nodal", "seeded", "aggregate")
ORIGIN_CODE: dict[str, int] = {name: i for i, name in enumerate(ORIGINS)}

END_REASONS: tuple[str, ...] = ("", "resected", "irradiated", "extinct", "death", "horizon")
END_CODE: dict[str, int] = {name: i for i, name in enumerate(END_REASONS)}

PURPOSES: tuple[str, ...] = ("staging", "followup", "restaging", "symptoms", "confirmation")
PURPOSE_CODE: dict[str, int] = {name: i for i, name in enumerate(PURPOSES)}

RESULTS: tuple[str, ...] = ("tp", "fp", "tn", "fn")
RESULT_CODE: dict[str, int] = {name: i for i, name in enumerate(RESULTS)}

EVENT_KINDS: tuple[str, ...] = (
    "diagnosis",
    "detection",
    "symptom_onset",
    "progression",
    "treatment_start",
    "treatment_end",
    "not_treated",
    "skeletal_event",
    "palliative_care",
    "death",
)
EVENT_CODE: dict[str, int] = {name: i for i, name in enumerate(EVENT_KINDS)}

STAGES: tuple[str, ...] = ("I", "II", "III", "IV")
T_STAGES: tuple[str, ...] = ("T1", "T2", "T3")
N_STAGES: tuple[str, ...] = ("N0", "N1", "N2", "N3")
DEATH_CAUSES: tuple[str, ...] = ("", "breast_cancer", "treatment", "other")
LETHAL_ORIGINS: tuple[str, ...] = ("", "present_at_diagnosis", "seeded_later")

#: What a symptomatic organ presents with (MODEL 4, "Symptoms"); used as the `detail` of symptom events.
SYMPTOM_OF_ORGAN: dict[str, str] = {
    "breast": "breast_lump",
    "regional_nodes": "axillary_lump",
    "bone": "bone_pain",
    "lung": "breathlessness",
    "liver": "liver_dysfunction",
    "brain": "neurological_signs",
    "distant_nodes": "palpable_node",
    "other": "organ_specific",
}

DAYS_PER_MONTH = 365.25 / 12.0
DAYS_PER_YEAR = 365.25

#: Every `detail` an event can carry (SPEC "events"); codes index this tuple.
SURGERY_DETAILS: tuple[str, ...] = ("surgery:breast_conserving", "surgery:mastectomy", "surgery:axillary")
MAX_LINES = 10
_LINES = tuple(f"line{k}" for k in range(1, MAX_LINES + 1))
TREATMENT_DETAILS: tuple[str, ...] = (
    SURGERY_DETAILS
    + ("radiotherapy:breast", "radiotherapy:palliative", "radiotherapy:sbrt", "chemotherapy:adjuvant")
    + tuple(f"chemotherapy:{x}" for x in _LINES)
    + ("endocrine:adjuvant",) + tuple(f"endocrine:{x}" for x in _LINES)
    + ("anti_her2:adjuvant",) + tuple(f"anti_her2:{x}" for x in _LINES)
    + ("resection:liver",)
)
NOT_TREATED_REASONS: tuple[str, ...] = (
    "dose_limit:lung", "dose_limit:liver", "dose_limit:spinal_cord", "health", "too_many_lesions",
)
PALLIATIVE_DETAILS: tuple[str, ...] = ("pain", "breathing", "liver")
SKELETAL_DETAILS: tuple[str, ...] = ("fracture", "spinal_cord_compression", "hypercalcaemia")
EVENT_DETAILS: tuple[str, ...] = (
    ("",)
    + MODALITIES
    + ("symptoms",)
    + tuple(SYMPTOM_OF_ORGAN.values())
    + TREATMENT_DETAILS
    + NOT_TREATED_REASONS
    + PALLIATIVE_DETAILS
    + SKELETAL_DETAILS
    + _LINES
    + DEATH_CAUSES[1:]
)
DETAIL_CODE: dict[str, int] = {name: i for i, name in enumerate(EVENT_DETAILS)}
#: `detected_by` of lesions: a modality, or symptoms when the work-up was triggered by symptoms.
DETECTED_BY: tuple[str, ...] = ("",) + MODALITIES + ("symptoms",)
