"""DICOM SEG and RTSTRUCT in, DICOM SEG out, on small synthetic series made with pydicom.

Every SEG medseg writes here is checked by dciodvfy (Debian dicom3tools): no "Error" line allowed.
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_fixtures import dciodvfy, voxel_square, write_ct_series, write_rtstruct
from io_helpers import assert_one_line_error, rotation

from medseg.errors import MedsegError
from medseg.io import read_image
from medseg.io.dicom_seg import property_codes, write_dicom_seg
from medseg.io.dicom_series import load_series
from medseg.io.labels import read_label_map

SHAPE = (5, 12, 16)  # z, y, x


@pytest.fixture()
def series(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    folder = tmp_path / "case" / "ct"
    write_ct_series(folder, rng.integers(-100, 100, SHAPE).astype(np.int16))
    return folder


def two_objects() -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    labels[1:3, 2:6, 3:9] = 1
    labels[3, 7:11, 10:15] = 2
    return labels


def check_valid(path: Path) -> list[str]:
    errors, warnings = dciodvfy(path)
    assert not errors, errors
    return warnings


def test_series_geometry_matches_read_image(series):
    loaded, image = load_series(series), read_image(series)
    assert loaded.shape == image.array.shape
    for name in ("spacing", "origin", "direction"):
        assert np.allclose(getattr(loaded.geometry, name), getattr(image.geometry, name), atol=1e-4), name


def test_seg_round_trip_is_exact_and_valid(series, tmp_path):
    labels = two_objects()
    out = write_dicom_seg(labels, series, series.parent / "seg" / "seg.dcm", {1: "liver", 2: "GTV-1"},
                          {"model": "litemedsam", "checkpoint_sha256": "ab" * 32})
    check_valid(out)
    back = read_label_map(out, reference=series)
    assert np.array_equal(back.labels, labels)
    assert back.names == {1: "liver", 2: "GTV-1"}
    assert np.allclose(back.geometry.spacing, read_image(series).geometry.spacing)
    assert np.array_equal(read_label_map(out).labels, labels)  # series found beside the SEG (sibling folder)


def test_seg_content(series, tmp_path):
    out = write_dicom_seg(two_objects(), series, tmp_path / "seg.dcm", {1: "liver"},
                          {"model": "litemedsam", "checkpoint_sha256": "cd" * 32})
    ds, source = pydicom.dcmread(out), pydicom.dcmread(sorted(series.glob("*.dcm"))[0])
    for key in ("PatientID", "PatientName", "PatientBirthDate", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert ds.get(key) == source.get(key), key
    assert ds.Manufacturer == "medseg" and ds.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    assert int(ds.NumberOfFrames) == 3  # empty frames omitted: object 1 on 2 slices, object 2 on 1
    first, second = ds.SegmentSequence
    assert (first.SegmentLabel, second.SegmentLabel) == ("liver", "object 2")
    assert first.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Liver"
    assert second.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"
    assert first.SegmentAlgorithmType == "SEMIAUTOMATIC"
    algorithm = first.SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "medseg" and "cd" * 32 in str(algorithm.AlgorithmParameters)
    text = " ".join(str(e.value) for e in ds.iterall() if e.VR in ("PN", "LO", "SH", "LT", "ST", "UT", "CS"))
    for private in {getpass.getuser(), socket.gethostname()} - {"", "root"}:
        assert private not in text


def test_property_codes():
    assert property_codes("GTV-1")[1][2] == "Neoplasm"
    assert property_codes("Liver tumour")[1][2] == "Liver"
    assert property_codes("object 1") == (("85756007", "SCT", "Tissue"),) * 2


def test_oblique_series_round_trip(tmp_path):
    folder = tmp_path / "oblique"
    write_ct_series(folder, np.zeros(SHAPE, np.int16), direction=rotation(0.2, -0.1, 0.3))
    labels = two_objects()
    out = write_dicom_seg(labels, folder, tmp_path / "seg.dcm")
    check_valid(out)
    assert np.array_equal(read_label_map(out, folder).labels, labels)


def test_single_slice_series_2d_labels(tmp_path):
    folder = tmp_path / "one"
    write_ct_series(folder, np.zeros((1, 12, 16), np.int16))
    labels = np.zeros((12, 16), np.uint8)
    labels[3:7, 4:9] = 1
    out = write_dicom_seg(labels, folder, tmp_path / "seg.dcm")
    check_valid(out)
    back, image = read_label_map(out, folder), read_image(folder)
    assert np.array_equal(back.labels, labels) and back.labels.shape == image.grid_shape
    for name in ("spacing", "origin", "direction"):
        assert np.allclose(getattr(back.geometry, name), getattr(image.geometry, name), atol=1e-4), name


def test_rtstruct_square_is_exact(series, tmp_path):
    rs = write_rtstruct(tmp_path / "case" / "rs.dcm", series, {"GTV": [voxel_square(3, 2, 8, 6, 1)]})
    result = read_label_map(rs)  # the series is a sub-folder of the RTSTRUCT's folder
    expected = np.zeros(SHAPE, np.uint8)
    expected[1, 2:7, 3:9] = 1
    assert np.array_equal(result.labels, expected) and result.names == {1: "GTV"}


def test_rtstruct_hole_and_two_rois(series, tmp_path):
    rois = {"ring": [voxel_square(2, 2, 12, 10, 2), voxel_square(5, 4, 9, 8, 2)],
            "spot": [voxel_square(0, 0, 1, 1, 4)]}
    result = read_label_map(write_rtstruct(tmp_path / "rs.dcm", series, rois), reference=series)
    expected = np.zeros(SHAPE, np.uint8)
    expected[2, 2:11, 2:13] = 1
    expected[2, 4:9, 5:10] = 0  # the inner contour and its edge pixels are the hole
    expected[4, 0:2, 0:2] = 2
    assert np.array_equal(result.labels, expected)
    assert result.names == {1: "ring", 2: "spot"}


def test_rtstruct_matches_seg_of_same_mask(series, tmp_path):
    labels = np.zeros(SHAPE, np.uint8)
    labels[0:4, 3:9, 2:12] = 1
    seg = read_label_map(write_dicom_seg(labels, series, tmp_path / "seg.dcm"), series)
    rs = write_rtstruct(tmp_path / "rs.dcm", series, {"box": [voxel_square(2, 3, 11, 8, z) for z in range(4)]})
    assert np.array_equal(read_label_map(rs, series).labels, seg.labels)


def test_choose_segments(series, tmp_path):
    rois = {"a": [voxel_square(2, 2, 8, 8, 1)], "b": [voxel_square(4, 4, 10, 10, 1)]}
    rs = write_rtstruct(tmp_path / "rs.dcm", series, rois)
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(rs, series)
    assert_one_line_error(excinfo, rs, "overlap", "one at a time")
    only_b = read_label_map(rs, series, segments=["B"])
    assert only_b.names == {1: "b"} and only_b.labels[1, 4, 4] == 1
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(rs, series, segments=["c"])
    assert_one_line_error(excinfo, rs, "'c'", "'a'", "'b'")


# --------------------------------------------------------------------------------- bad input


def test_seg_referencing_another_series(series, tmp_path):
    other = tmp_path / "other"
    write_ct_series(other, np.zeros(SHAPE, np.int16))
    out = write_dicom_seg(two_objects(), series, tmp_path / "seg.dcm")
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(out, reference=other)
    assert_one_line_error(excinfo, out, "references series", str(other))


def test_rtstruct_referencing_another_series(series, tmp_path):
    rs = write_rtstruct(tmp_path / "rs.dcm", series, {"a": [voxel_square(2, 2, 8, 8, 1)]}, series_uid="1.2.3.4")
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(rs, reference=series)
    assert_one_line_error(excinfo, rs, "1.2.3.4")


def test_series_not_found_beside(tmp_path, series):
    out = write_dicom_seg(two_objects(), series, tmp_path / "elsewhere" / "deep" / "seg.dcm")
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(out)
    assert_one_line_error(excinfo, out, "--reference")


def test_missing_series_slice(series, tmp_path):
    labels = np.zeros(SHAPE, np.uint8)
    labels[4, 2:5, 2:5] = 1
    out = write_dicom_seg(labels, series, tmp_path / "seg.dcm")
    sorted(series.glob("*.dcm"))[-1].unlink()  # the last slice, where the SEG's frame lies
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(out, series)
    assert_one_line_error(excinfo, out, "frame 1", "missing")


def test_missing_middle_slice_is_uneven(series, tmp_path):
    out = write_dicom_seg(two_objects(), series, tmp_path / "seg.dcm")
    sorted(series.glob("*.dcm"))[2].unlink()
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(out, series)
    assert_one_line_error(excinfo, series, "not evenly spaced")


def test_seg_missing_frames(series, tmp_path):
    out = write_dicom_seg(two_objects(), series, tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]
    ds.save_as(out)
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(out, series)
    assert_one_line_error(excinfo, out, "frames")


def test_seg_overlapping_segments(series, tmp_path):
    import highdicom as hd

    from medseg.io.dicom_seg import _algorithm

    stacked = np.zeros((*SHAPE, 2), np.uint8)
    stacked[1, 2:6, 2:6, 0] = 1
    stacked[1, 4:8, 4:8, 1] = 1
    descriptions = [hd.seg.SegmentDescription(k, name, hd.sr.CodedConcept("85756007", "SCT", "Tissue"),
                                              hd.sr.CodedConcept("85756007", "SCT", "Tissue"), "AUTOMATIC",
                                              _algorithm({}))
                    for k, name in ((1, "first"), (2, "second"))]
    seg = hd.seg.Segmentation(load_series(series).datasets, stacked, "BINARY", descriptions, hd.UID(), 5,
                              hd.UID(), 1, "test", "test", "1", "1")
    out = tmp_path / "overlap.dcm"
    seg.save_as(out)
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(out, series)
    assert_one_line_error(excinfo, out, "'first'", "'second'", "overlap")
    assert read_label_map(out, series, segments=["second"]).labels.sum() == 16


def test_empty_contours(series, tmp_path):
    rs = write_rtstruct(tmp_path / "rs.dcm", series, {"empty": [], "ok": [voxel_square(2, 2, 8, 8, 1)]})
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(rs, series)
    assert_one_line_error(excinfo, rs, "'empty'", "no closed planar contour")
    assert read_label_map(rs, series, segments=["ok"]).labels.sum() == 49
    short = write_rtstruct(tmp_path / "short.dcm", series, {"line": [voxel_square(2, 2, 8, 8, 1)[:2]]})
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(short, series)
    assert_one_line_error(excinfo, short, "'line'", "2 points")


def test_contour_between_slices(series, tmp_path):
    contour = voxel_square(2, 2, 8, 8, 1)
    contour[:, 2] += 1.2  # about half a slice (2.5 mm) off
    rs = write_rtstruct(tmp_path / "rs.dcm", series, {"off": [contour]})
    with pytest.raises(MedsegError) as excinfo:
        read_label_map(rs, series)
    assert_one_line_error(excinfo, rs, "not on a slice")


def test_several_frames_of_reference(tmp_path):
    folder = tmp_path / "mixed"
    write_ct_series(folder, np.zeros(SHAPE, np.int16), frames=["1.2.3.1"] * 3 + ["1.2.3.2"] * 2)
    out = tmp_path / "seg.dcm"
    with pytest.raises(MedsegError) as excinfo:
        write_dicom_seg(two_objects(), folder, out)
    assert_one_line_error(excinfo, folder, "2 frames of reference")
    assert not out.exists()


def test_write_refuses_bad_labels(series, tmp_path):
    out = tmp_path / "seg.dcm"
    for labels, words in ((np.zeros(SHAPE, np.uint8), ["nothing was segmented"]),
                          (np.ones((2, 3, 4), np.uint8), ["not on the grid"])):
        with pytest.raises(MedsegError) as excinfo:
            write_dicom_seg(labels, series, out)
        assert_one_line_error(excinfo, out, *words)
        assert not out.exists()


def test_fractional_seg(series, tmp_path):
    import highdicom as hd

    from medseg.io.dicom_seg import _algorithm

    probability = np.zeros(SHAPE, np.float32)
    probability[2, 3:7, 4:10] = 0.8
    probability[2, 3:7, 10:12] = 0.3  # below one half: outside
    description = hd.seg.SegmentDescription(1, "soft", hd.sr.CodedConcept("85756007", "SCT", "Tissue"),
                                            hd.sr.CodedConcept("85756007", "SCT", "Tissue"), "AUTOMATIC",
                                            _algorithm({}))
    seg = hd.seg.Segmentation(load_series(series).datasets, probability, "FRACTIONAL", [description], hd.UID(),
                              5, hd.UID(), 1, "test", "test", "1", "1", max_fractional_value=200)
    out = tmp_path / "fractional.dcm"
    seg.save_as(out)
    expected = np.zeros(SHAPE, np.uint8)
    expected[2, 3:7, 4:10] = 1
    result = read_label_map(out, series)
    assert np.array_equal(result.labels, expected) and result.names == {1: "soft"}


def test_rtstruct_on_an_oblique_series(tmp_path):
    from dicom_fixtures import ORIGIN, SPACING

    folder, direction = tmp_path / "oblique", rotation(0.2, -0.1, 0.3)
    write_ct_series(folder, np.zeros(SHAPE, np.int16), direction=direction)
    corners = np.array([[3, 2, 2], [8, 2, 2], [8, 6, 2], [3, 6, 2]], float)  # voxel (x, y, z) on slice 2
    contour = np.asarray(ORIGIN) + (direction @ (corners * np.asarray(SPACING)).T).T
    result = read_label_map(write_rtstruct(tmp_path / "rs.dcm", folder, {"GTV": [contour]}), folder)
    expected = np.zeros(SHAPE, np.uint8)
    expected[2, 2:7, 3:9] = 1
    assert np.array_equal(result.labels, expected)
