"""Round trips through every format open_volume reads, voxel-size rules, lazy reads."""

from __future__ import annotations

import json
import tracemalloc
import warnings

import h5py
import imagecodecs
import numpy as np
import pytest
import tifffile
import zarr

from dendrosam.reconstruct import Volume, open_labels, open_volume, write_ome_zarr, write_tiff
from dendrosam.reconstruct.io_writers import create_ome_zarr_array

VS = (40.0, 12.0, 8.0)


@pytest.fixture
def stack(rng):
    return rng.integers(0, 256, size=(6, 20, 24), dtype=np.uint8)


@pytest.fixture
def labels(rng):
    return rng.integers(0, 5, size=(6, 20, 24)).astype(np.uint32)


def check(vol: Volume, expected: np.ndarray, vs=VS, origin="metadata") -> None:
    assert vol.shape == expected.shape
    assert vol.dtype == expected.dtype
    assert vol.voxel_size == vs
    assert vol.provenance["voxel_size_origin"] == origin
    np.testing.assert_array_equal(vol.read(), expected)
    np.testing.assert_array_equal(vol.section(3), expected[3])
    np.testing.assert_array_equal(vol.data[1:5:2, 2, ::3], expected[1:5:2, 2, ::3])
    np.testing.assert_array_equal(np.stack(list(vol.iter_sections(1, 5, 2))), expected[1:5:2])


def test_ome_tiff_round_trip(tmp_path, stack):
    write_tiff(tmp_path / "a.ome.tif", stack, VS)
    vol = open_volume(tmp_path / "a.ome.tif")
    check(vol, stack)
    assert vol.provenance["format"] == "ome-tiff"


def test_ome_tiff_micrometre_units(tmp_path, stack):
    meta = {"axes": "ZYX", "PhysicalSizeZ": 0.05, "PhysicalSizeZUnit": "µm",
            "PhysicalSizeY": 0.004, "PhysicalSizeX": 0.004}  # fmt: skip  (Y/X: OME default µm)
    tifffile.imwrite(tmp_path / "u.ome.tif", stack, ome=True, metadata=meta)
    assert open_volume(tmp_path / "u.ome.tif").voxel_size == (50.0, 4.0, 4.0)


def test_imagej_tiff_voxel_size(tmp_path, stack):
    tifffile.imwrite(tmp_path / "ij.tif", stack, imagej=True, resolution=(1 / 8.0, 1 / 12.0),
                     metadata={"axes": "ZYX", "spacing": 40.0, "unit": "nm"})  # fmt: skip
    check(open_volume(tmp_path / "ij.tif"), stack)


def test_plain_tiff_default_voxel_size_warns_and_user_overrides(tmp_path, stack):
    tifffile.imwrite(tmp_path / "p.tif", stack)
    with pytest.warns(UserWarning, match="voxel size not stated"):
        vol = open_volume(tmp_path / "p.tif")
    check(vol, stack, vs=(40.0, 15.0, 15.0), origin="default")
    assert not vol.voxel_size_known
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(open_volume(tmp_path / "p.tif", voxel_size=VS), stack, origin="user")


def test_png_slice_folder_natural_order(tmp_path, stack):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z, img in enumerate(stack):  # s2 must come before s10
        (folder / f"s{z * 4}.png").write_bytes(imagecodecs.png_encode(img))
    check(open_volume(folder, voxel_size=VS), stack, origin="user")


def test_tiff_slice_folder_rgb_converted(tmp_path, stack):
    folder = tmp_path / "rgb"
    folder.mkdir()
    for z, img in enumerate(stack):
        tifffile.imwrite(folder / f"{z:03d}.tif", np.repeat(img[..., None], 3, axis=-1))
    with pytest.warns(UserWarning, match="RGB"):
        vol = open_volume(folder, voxel_size=VS)
    check(vol, stack, origin="user")  # equal channels: grey == each channel


@pytest.mark.parametrize("fmt", [2, 3])
def test_plain_zarr_array_and_group(tmp_path, stack, fmt):
    arr = zarr.create_array(tmp_path / "a.zarr", shape=stack.shape, chunks=(2, 10, 12),
                            dtype=stack.dtype, zarr_format=fmt)  # fmt: skip
    arr[:] = stack
    arr.attrs["resolution"] = list(VS)
    check(open_volume(tmp_path / "a.zarr"), stack)
    group = zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=fmt)
    group.create_array("raw", data=stack, chunks=(1, 20, 24))
    check(open_volume(tmp_path / "g.zarr", dataset="raw", voxel_size=VS), stack, origin="user")


@pytest.mark.parametrize("fmt", [2, 3])
def test_ome_zarr_levels_and_labels(tmp_path, stack, labels, fmt):
    out = write_ome_zarr(tmp_path / "o.zarr", stack, VS, labels={"cells": labels},
                         chunks=(2, 8, 8), n_levels=2, zarr_format=fmt)  # fmt: skip
    vol = open_volume(out)
    check(vol, stack)
    assert vol.provenance["ome_version"] == ("0.5" if fmt == 3 else "0.4")
    lev1 = open_volume(out, level=1)
    assert lev1.voxel_size == (40.0, 24.0, 16.0) and lev1.shape == (6, 10, 12)
    expected = stack.reshape(6, 10, 2, 12, 2).astype(float).mean(axis=(2, 4))
    np.testing.assert_array_equal(lev1.read(), np.rint(expected).astype(np.uint8))
    lab = open_labels(out / "labels" / "cells", like=vol)
    check(lab, labels)
    lab1 = open_volume(out, dataset="labels/cells", level=1)
    np.testing.assert_array_equal(lab1.read(), labels[:, ::2, ::2])
    root = zarr.open_group(out, mode="r")
    meta = root.attrs["ome"] if fmt == 3 else root.attrs
    assert meta["multiscales"][0]["axes"][0] == {"name": "z", "type": "space", "unit": "nanometer"}


def test_ome_zarr_streamed_from_generator(tmp_path, stack):
    sections = (s for s in stack)  # a generator: length unknown up front
    write_ome_zarr(tmp_path / "s.zarr", sections, VS, chunks=(2, 16, 16))
    vol = open_volume(tmp_path / "s.zarr")
    check(vol, stack)
    assert vol.provenance["chunks"] == (2, 16, 16)


def test_create_ome_zarr_array_block_writes(tmp_path, stack, labels):
    raw = create_ome_zarr_array(tmp_path / "b.zarr", stack.shape, stack.dtype, VS, chunks=(2, 20, 24))
    lab = create_ome_zarr_array(tmp_path / "b.zarr", labels.shape, labels.dtype, VS,
                                label="seg", chunks=(2, 20, 24))  # fmt: skip
    for z0 in (4, 0, 2):  # any order, one chunk-aligned block at a time
        raw[z0 : z0 + 2] = stack[z0 : z0 + 2]
        lab[z0 : z0 + 2] = labels[z0 : z0 + 2]
    check(open_volume(tmp_path / "b.zarr"), stack)
    check(open_labels(tmp_path / "b.zarr", dataset="labels/seg"), labels)


def test_hdf5_dataset_path_and_attrs(tmp_path, stack):
    with h5py.File(tmp_path / "v.h5", "w") as fh:
        fh.create_dataset("volumes/raw", data=stack).attrs["resolution"] = VS
        fh.create_dataset("volumes/um", data=stack).attrs["element_size_um"] = [v / 1000 for v in VS]
    check(open_volume(f"{tmp_path / 'v.h5'}:/volumes/raw"), stack)
    vol = open_volume(tmp_path / "v.h5", dataset="volumes/um")
    assert vol.voxel_size == pytest.approx(VS)


def test_precomputed_written_by_cloudvolume(tmp_path, labels):
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=1, layer_type="segmentation", data_type="uint32", encoding="raw",
        resolution=[VS[2], VS[1], VS[0]], voxel_offset=[3, 0, 0], chunk_size=[8, 8, 2],
        volume_size=[24, 20, 6],
    )  # fmt: skip
    cv = CloudVolume(f"file://{tmp_path / 'pc'}", info=info, progress=False)
    cv.commit_info()
    cv[3:27, 0:20, 0:6] = np.transpose(labels, (2, 1, 0))[..., None]
    vol = open_volume(f"precomputed://file://{tmp_path / 'pc'}")
    check(vol, labels)
    assert json.loads((tmp_path / "pc" / "info").read_text())["type"] == "segmentation"
    check(open_volume(tmp_path / "pc"), labels)  # a folder with an info file


def test_npy_memmap(tmp_path, stack):
    np.save(tmp_path / "v.npy", stack)
    check(open_volume(tmp_path / "v.npy", voxel_size=VS), stack, origin="user")


def test_2d_allowed_as_one_section(tmp_path, stack):
    tifffile.imwrite(tmp_path / "one.tif", stack[0])
    vol = open_volume(tmp_path / "one.tif", voxel_size=VS, allow_2d=True)
    assert vol.shape == (1, 20, 24)
    np.testing.assert_array_equal(vol.section(0), stack[0])


def test_rgb_stack_converted_to_grey(tmp_path, stack):
    rgb = np.stack([stack, stack // 2, stack // 4], axis=-1)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    with pytest.warns(UserWarning, match="grey"):
        vol = open_volume(tmp_path / "rgb.tif", voxel_size=VS)
    grey = np.rint(rgb.astype(float) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    np.testing.assert_array_equal(vol.read(), grey)


def test_labels_float_integral_converted(tmp_path, labels):
    np.save(tmp_path / "f.npy", labels.astype(np.float32))
    with pytest.warns(UserWarning, match="float labels converted"):
        lab = open_labels(tmp_path / "f.npy", voxel_size=VS)
    assert lab.dtype == np.uint32
    np.testing.assert_array_equal(lab.read(), labels)


def test_section_read_does_not_load_the_stack(tmp_path, rng):
    big = rng.integers(0, 256, size=(200, 128, 128), dtype=np.uint8)  # 3.3 MB
    write_tiff(tmp_path / "big.ome.tif", big, VS, compression=None)
    vol = open_volume(tmp_path / "big.ome.tif")
    tracemalloc.start()
    img = vol.section(150)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(img, big[150])
    assert peak < 10 * 128 * 128, f"reading one section allocated {peak} bytes"


def test_volume_from_array_and_repr():
    vol = Volume.from_array(np.zeros((2, 3, 4), np.uint16), (30, 5, 5))
    assert vol.shape == (2, 3, 4) and vol.ndim == 3 and len(vol) == 2
    assert "voxel_size=(30.0, 5.0, 5.0)" in repr(vol)
    assert open_volume(vol, voxel_size=(10, 10, 10)).voxel_size == (10.0, 10.0, 10.0)


def test_bundled_demo_data():
    from dendrosam.reconstruct import demo_data

    paths = demo_data("medulla40")
    raw, gt = open_volume(paths["raw"]), open_labels(paths["neurons"])
    assert raw.shape == gt.shape == (32, 250, 125)
    assert raw.voxel_size == gt.voxel_size == (40.0, 10.0, 10.0)
    assert open_labels(paths["watershed"], like=raw).shape == raw.shape


def test_demo_crop_is_the_held_out_half(shared_data):
    from dendrosam.reconstruct import demo_data

    full = tifffile.imread(shared_data / "medulla_fib" / "neurons_z000-124.ome.tif")
    bundled = open_volume(demo_data()["neurons"]).read()
    np.testing.assert_array_equal(bundled, full[::4, :, 125:])
