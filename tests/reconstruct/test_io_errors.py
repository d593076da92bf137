"""Every user mistake in volume I/O gives a typed error naming the file or option."""

from __future__ import annotations

import json

import imagecodecs
import numpy as np
import pytest
import tifffile
import zarr

from dendrosam.cli import main
from dendrosam.errors import FormatError, InputError, LabelError, OutputError, VoxelSizeError
from dendrosam.reconstruct import check_section, open_labels, open_volume, write_ome_zarr
from dendrosam.reconstruct.volume import Volume, validate_voxel_size

VS = (40, 10, 10)


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="nope.tif: no such file"):
        open_volume(tmp_path / "nope.tif")


def test_unsupported_extension_lists_formats(tmp_path):
    (tmp_path / "a.mrc").write_bytes(b"x")
    with pytest.raises(FormatError, match=r"unsupported format '\.mrc'.*OME-TIFF"):
        open_volume(tmp_path / "a.mrc")


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match="holds no image slices"):
        open_volume(tmp_path)


def test_mixed_slice_sizes_names_file_and_shapes(tmp_path):
    for i, shape in enumerate([(8, 8), (8, 8), (9, 8)]):
        (tmp_path / f"{i}.png").write_bytes(imagecodecs.png_encode(np.zeros(shape, np.uint8)))
    with pytest.raises(FormatError, match=r"2\.png: slice shape \(9, 8\) differs from 0\.png \(8, 8\)"):
        open_volume(tmp_path, voxel_size=VS)


def test_truncated_tiff(tmp_path, rng):
    data = rng.integers(0, 255, (20, 64, 64), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "full.tif", data, compression="zlib")
    raw = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError, match="cut.tif: truncated or corrupt TIFF"):
        open_volume(tmp_path / "cut.tif", voxel_size=VS)
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(FormatError, match="junk.tif: not a readable TIFF"):
        open_volume(tmp_path / "junk.tif")


def test_corrupt_zarr_chunk_fails_on_read(tmp_path, rng):
    write_ome_zarr(tmp_path / "c.zarr", rng.integers(0, 9, (4, 8, 8), dtype=np.uint8), VS,
                   chunks=(1, 8, 8))  # fmt: skip
    chunk = tmp_path / "c.zarr" / "0" / "c" / "2" / "0" / "0"
    chunk.write_bytes(b"garbage")
    vol = open_volume(tmp_path / "c.zarr")
    np.testing.assert_array_equal(vol.section(1).shape, (8, 8))  # other chunks still read
    with pytest.raises(FormatError, match=r"c\.zarr/0: cannot read 2 .*corrupt"):
        vol.section(2)


def test_2d_needs_allow_2d(tmp_path):
    tifffile.imwrite(tmp_path / "one.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match=r"single 2D image \(8, 8\).*allow_2d"):
        open_volume(tmp_path / "one.tif", voxel_size=VS)


def test_4d_rejected_and_zero_size(tmp_path):
    np.save(tmp_path / "4d.npy", np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(InputError, match=r"4D data of shape \(2, 3, 8, 8\)"):
        open_volume(tmp_path / "4d.npy", voxel_size=VS)
    np.save(tmp_path / "empty.npy", np.zeros((0, 8, 8), np.uint8))
    with pytest.raises(InputError, match="zero-size axis"):
        open_volume(tmp_path / "empty.npy", voxel_size=VS)


@pytest.mark.parametrize("bad", [(0, 1, 1), (-4, 10, 10), (np.nan, 1, 1), (1e6, 1, 1), (1, 1), "ab"])
def test_voxel_size_validation(bad):
    with pytest.raises(VoxelSizeError, match="voxel_size"):
        validate_voxel_size(bad)


def test_label_checks(tmp_path):
    np.save(tmp_path / "frac.npy", np.full((2, 4, 4), 1.5, np.float32))
    with pytest.raises(LabelError, match="non-integer"):
        open_labels(tmp_path / "frac.npy", voxel_size=VS)
    np.save(tmp_path / "neg.npy", np.full((2, 4, 4), -1, np.int16))
    with pytest.raises(LabelError, match="negative values"):
        open_labels(tmp_path / "neg.npy", voxel_size=VS)
    np.save(tmp_path / "ok.npy", np.ones((2, 4, 4), np.int16))
    image = Volume.from_array(np.zeros((2, 4, 5), np.uint8), VS)
    with pytest.raises(LabelError, match=r"label shape \(2, 4, 4\) does not match image shape \(2, 4, 5\)"):
        open_labels(tmp_path / "ok.npy", like=image)
    assert open_labels(tmp_path / "ok.npy", voxel_size=VS).dtype == np.uint32


def test_check_section_reports_and_warns():
    img = np.ones((4, 4), np.float32)
    img[0, 0], img[1, 1] = np.nan, np.inf
    with pytest.warns(UserWarning) as record:
        rep = check_section(img, z=7)
    messages = [str(w.message) for w in record]
    assert messages == ["section 7 has 1 NaN and 1 infinite pixels",
                        "section 7 is constant (all 1.0): a missing or blank section?"]  # fmt: skip
    assert (rep.n_nan, rep.n_inf, rep.constant, rep.ok) == (1, 1, True, False)
    with pytest.warns(UserWarning, match="section 3 is constant"):
        assert check_section(np.zeros((4, 4), np.uint8), z=3).constant
    assert check_section(np.arange(16).reshape(4, 4)).ok


def test_writer_refuses_to_overwrite(tmp_path):
    write_ome_zarr(tmp_path / "o.zarr", np.zeros((1, 4, 4), np.uint8), VS)
    with pytest.raises(OutputError, match="already exists"):
        write_ome_zarr(tmp_path / "o.zarr", np.zeros((1, 4, 4), np.uint8), VS)


def test_cli_info_convert_and_errors(tmp_path, capsys, rng):
    data = rng.integers(0, 255, (5, 16, 16), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", data)
    assert main(["info", str(tmp_path / "in.tif"), "--voxel-size", "40", "8", "8", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["shape"] == [5, 16, 16] and rec["voxel_size_nm"] == [40.0, 8.0, 8.0]
    assert rec["voxel_size_origin"] == "user" and rec["format"] == "tiff"
    out = tmp_path / "out.zarr"
    assert main(["convert", str(tmp_path / "in.tif"), str(out), "--voxel-size", "40", "8", "8",
                 "--block", "2"]) == 0  # fmt: skip
    vol = open_volume(out)
    assert vol.voxel_size == (40.0, 8.0, 8.0)
    np.testing.assert_array_equal(vol.read(), data)
    assert main(["convert", str(out), str(tmp_path / "back.ome.tif")]) == 0
    np.testing.assert_array_equal(open_volume(tmp_path / "back.ome.tif").read(), data)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "missing.tif")]) == 2
    assert "dendrosam: error:" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "in.tif"), "--voxel-size", "0", "8", "8"]) == 2
    assert "--voxel-size: z size must be a positive" in capsys.readouterr().err
