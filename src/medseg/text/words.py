"""Words of structure names: normalising, laterality, plurals and the curated synonyms.

Everything here is pure data and string work (no image, no model), so the vocabulary can be tested alone.
A name is reduced to a *key*: lower case, punctuation and ``_`` as spaces, plurals made singular, filler
words dropped, the words sorted (so word order does not matter), e.g. ``"Nuclei, caudate"`` ->
``"caudate nucleus"``. Laterality is taken out first and kept apart as ``"left"``, ``"right"``, ``"both"``
or None (not said).
"""

from __future__ import annotations

import re

LEFT_WORDS = frozenset({"left", "l", "lt", "lft", "lh", "sinister", "sinistra", "sin", "links", "gauche"})
RIGHT_WORDS = frozenset({"right", "r", "rt", "rgt", "rh", "dexter", "dextra", "dex", "rechts", "droite"})
BOTH_WORDS = frozenset({"both", "bilateral", "bilaterally", "bilat", "lr"})
FILLER = frozenset({"the", "of", "a", "an", "side", "sided", "hemisphere", "hemispheric", "and", "proper", "area",
                    "structure", "region", "whole", "entire", "all", "gyrus", "division", "part"})

# plural -> singular for words that do not just drop an "s"
PLURALS = {
    "nuclei": "nucleus", "hippocampi": "hippocampus", "thalami": "thalamus", "amygdalae": "amygdala",
    "amygdalas": "amygdala", "gyri": "gyrus", "sulci": "sulcus", "lobules": "lobule", "putamina": "putamen",
    "putamens": "putamen", "pallida": "pallidum", "cortices": "cortex", "ganglia": "ganglion", "poles": "pole",
    "caudates": "caudate", "ventricles": "ventricle", "accumbenses": "accumbens", "lobi": "lobus",
    "vermes": "vermis", "opercula": "operculum", "cerebella": "cerebellum", "brains": "brain",
    "brainstems": "brainstem", "insulae": "insula", "cunei": "cuneus", "precunei": "precuneus",
}  # fmt: skip
NO_S_STRIP = frozenset({"accumbens", "corpus", "globus", "lobus", "nucleus", "gyrus", "sulcus", "hippocampus",
                        "thalamus", "cuneus", "precuneus", "vermis", "pons", "callosus", "striatus", "is",
                        "basis", "heschls", "heschl's", "precuneous", "campus", "ramus", "uncus", "pallidus",
                        "parahippocampus", "operculus", "cingulus", "fornix", "plus"})  # fmt: skip
SPELLING = {"ventrical": "ventricle", "precuneous": "precuneus", "cerebelum": "cerebellum", "heschls": "heschl",
            "heschl's": "heschl", "brain-stem": "brainstem",
            # AAL's abbreviations (Frontal_Sup_Orb, Cingulum_Ant, Supp_Motor_Area)
            "sup": "superior", "mid": "middle", "inf": "inferior", "med": "medial", "orb": "orbital",
            "ant": "anterior", "post": "posterior", "supp": "supplementary"}  # fmt: skip


def tokens(text: str) -> list[str]:
    """Lower-case words of a name: ``_``, ``-``, ``,``, ``(``, ``)`` and ``/`` split words."""
    text = text.lower().replace("'s", "s")
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text)
    return [SPELLING.get(w, w) for w in re.split(r"[\s_,;:()/\\.\-+]+", text) if w]


def singular(word: str) -> str:
    """``nuclei`` -> ``nucleus``, ``caudates`` -> ``caudate``; words that end in s by nature are kept."""
    if word in PLURALS:
        return PLURALS[word]
    if len(word) > 3 and word.endswith("s") and word not in NO_S_STRIP and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def split_side(text: str) -> tuple[str | None, list[str]]:
    """(side, remaining words): side is "left", "right", "both" or None.

    Laterality may be a word anywhere ("hippocampus left", "lt caudate", "sinister amygdala") or a prefix /
    suffix glued by ``_`` or ``.`` ("Caudate_L", "L_Caudate", "Putamen.R"), as atlases and users write it.
    "left and right" / "bilateral" / a left and a right word together mean both sides.
    """
    words = tokens(text)
    sides = set()
    rest = []
    for w in words:
        if w in LEFT_WORDS:
            sides.add("left")
        elif w in RIGHT_WORDS:
            sides.add("right")
        elif w in BOTH_WORDS:
            sides.add("both")
        else:
            rest.append(w)
    if not sides:
        return None, rest
    if len(sides) > 1 or "both" in sides:
        return "both", rest
    return sides.pop(), rest


def key(words: list[str]) -> str:
    """The lookup key of a side-free name: singular words, fillers dropped, sorted."""
    kept = sorted({singular(w) for w in words if w not in FILLER})
    return " ".join(kept)


# Curated synonyms, side-free: what users say -> the vocabulary's canonical name. Canonical names are the
# atlas-derived names (``Vocabulary.canonical``); entries whose target no loaded atlas knows are ignored.
SYNONYMS: dict[str, str] = {
    # deep grey matter
    "caudate nucleus": "caudate", "nucleus caudatus": "caudate", "caudate head": "caudate", "cn": "caudate",
    "putamen nucleus": "putamen", "put": "putamen",
    "globus pallidus": "pallidum", "gp": "pallidum", "pallidus": "pallidum", "paleostriatum": "pallidum",
    "thalamus proper": "thalamus", "thalamic nucleus": "thalamus", "thal": "thalamus", "dorsal thalamus": "thalamus",
    "hippocampal formation": "hippocampus", "hippocampal": "hippocampus", "hippo": "hippocampus",
    "hc": "hippocampus", "hipp": "hippocampus", "ammon horn": "hippocampus", "cornu ammonis": "hippocampus",
    "amygdaloid body": "amygdala", "amygdaloid complex": "amygdala", "amygdaloid nucleus": "amygdala",
    "amygdaloid": "amygdala", "amyg": "amygdala", "amygdalar": "amygdala",
    "nucleus accumbens": "accumbens", "accumbens area": "accumbens", "nacc": "accumbens",
    "accumbens nucleus": "accumbens", "ventral striatum": "accumbens",
    # other
    "brain stem": "brainstem", "truncus cerebri": "brainstem", "bs": "brainstem",
    "lateral ventricle": "lateral ventricle", "lv": "lateral ventricle",
    "insula": "insular cortex", "insular": "insular cortex", "island of reil": "insular cortex",
    "insula lobe": "insular cortex",
    "precentral": "precentral gyrus", "primary motor cortex": "precentral gyrus", "motor cortex": "precentral gyrus",
    "m1": "precentral gyrus",
    "postcentral": "postcentral gyrus", "primary somatosensory cortex": "postcentral gyrus",
    "somatosensory cortex": "postcentral gyrus", "s1": "postcentral gyrus",
    "lingual": "lingual gyrus", "angular": "angular gyrus", "cuneus": "cuneal cortex", "cuneal": "cuneal cortex",
    "precuneus": "precuneus cortex", "heschl gyrus": "heschl gyrus", "transverse temporal gyrus": "heschl gyrus",
    "heschl": "heschl gyrus", "primary auditory cortex": "heschl gyrus", "a1": "heschl gyrus",
    "supplementary motor area": "juxtapositional lobule cortex", "sma": "juxtapositional lobule cortex",
    "supp motor area": "juxtapositional lobule cortex", "supplementary motor cortex": "juxtapositional lobule cortex",
    "calcarine": "intracalcarine cortex", "calcarine cortex": "intracalcarine cortex",
    "v1": "intracalcarine cortex", "primary visual cortex": "intracalcarine cortex",
    "whole brain": "brain", "brain mask": "brain", "encephalon": "brain", "cerebrum and cerebellum": "brain",
    "intracranial brain": "brain", "brain parenchyma": "brain",
}  # fmt: skip

# Groups: side-free name -> the canonical names it joins (one object, their union). Said in docs/text.md.
GROUPS: dict[str, tuple[str, ...]] = {
    "lentiform nucleus": ("putamen", "pallidum"),
    "lenticular nucleus": ("putamen", "pallidum"),
    "lentiform": ("putamen", "pallidum"),
    "basal ganglia": ("caudate", "putamen", "pallidum"),
    "basal nuclei": ("caudate", "putamen", "pallidum"),
    "striatum": ("caudate", "putamen"),
    "dorsal striatum": ("caudate", "putamen"),
    "neostriatum": ("caudate", "putamen"),
    "corpus striatum": ("caudate", "putamen", "pallidum"),
    "deep grey matter": ("caudate", "putamen", "pallidum", "thalamus"),
    "deep gray matter": ("caudate", "putamen", "pallidum", "thalamus"),
    "medial temporal lobe": ("hippocampus", "amygdala"),
}

# Names of structures outside the brain: asked on a brain scan they get "this route cannot serve" rather
# than a list of unrelated near-misses.
NOT_BRAIN = frozenset({
    "liver", "kidney", "spleen", "lung", "heart", "pancreas", "stomach", "bladder", "prostate", "aorta",
    "colon", "bowel", "gallbladder", "esophagus", "oesophagus", "trachea", "rib", "vertebra", "spine", "femur",
    "tumour", "tumor", "lesion", "nodule", "adrenal", "uterus", "breast", "muscle", "bone", "skull",
    "spinal cord", "disc", "intervertebral disc", "lumbar", "thyroid", "parotid",
})  # fmt: skip
