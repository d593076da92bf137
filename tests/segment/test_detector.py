"""``detect`` resamples sections to a detector's training pixel size and maps boxes back exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dendrosam.errors import ConfigError
from dendrosam.segment.detector import Detector, detect, in_plane_nm


class _Boxes:
    def __init__(self, xyxy):
        self.xyxy = torch.tensor(xyxy, dtype=torch.float32)
        self.conf = torch.full((len(xyxy),), 0.9)
        self.cls = torch.zeros(len(xyxy))

    def __len__(self):
        return len(self.xyxy)


class _FakeYolo:
    """Returns one box per crop at a fixed place in crop pixels; records what it was given."""

    def __init__(self, box):
        self.box, self.calls = box, []

    def predict(self, crops, **kw):
        self.calls.append(([c.shape for c in crops], kw["imgsz"]))
        return [type("R", (), {"boxes": _Boxes([self.box])})() for _ in crops]


def test_section_is_resampled_to_the_training_pixel_size_and_boxes_come_back():
    model = _FakeYolo([20.0, 40.0, 60.0, 100.0])
    det = Detector(model=model, device="cpu", source="fake", imgsz=256, pixel_nm=5.0)
    section = np.random.default_rng(0).integers(0, 255, (100, 150)).astype(np.uint8)
    boxes = detect(det, section, conf=0.1, pixel_nm=10.0)  # 10 nm section, 5 nm detector: 2x
    shapes, imgsz = model.calls[-1]
    assert shapes == [(200, 300, 3)] and imgsz == 320  # the resampled section, at its own size
    np.testing.assert_allclose(boxes.xyxy, [[10.0, 20.0, 30.0, 50.0]])  # halved back
    detect(det, section, conf=0.1, pixel_nm=4.0)  # 4 nm section: 0.8x
    assert model.calls[-1][0] == [(80, 120, 3)]


def test_detector_without_pixel_size_uses_sections_as_they_are():
    model = _FakeYolo([20.0, 40.0, 60.0, 100.0])
    det = Detector(model=model, device="cpu", source="fake", imgsz=256)
    section = np.zeros((100, 150), np.uint8)
    boxes = detect(det, section, conf=0.1, pixel_nm=10.0)
    assert model.calls[-1] == ([(100, 150, 3)], 256)  # training size, as before
    np.testing.assert_allclose(boxes.xyxy, [[20.0, 40.0, 60.0, 100.0]])


def test_bad_pixel_size_is_a_config_error():
    det = Detector(model=_FakeYolo([0, 0, 1, 1]), device="cpu", source="fake", pixel_nm=5.0)
    with pytest.raises(ConfigError, match="pixel size"):
        detect(det, np.zeros((8, 8), np.uint8), pixel_nm=-1.0)


def test_in_plane_pixel_size_is_the_geometric_mean():
    assert in_plane_nm((40.0, 4.0, 9.0)) == pytest.approx(6.0)


def test_importing_ultralytics_leaves_numpy_and_torch_print_options_alone():
    import subprocess
    import sys

    code = (
        "import numpy as np, torch\n"
        "np.set_printoptions(precision=3); torch.set_printoptions(precision=2)\n"
        "before = (np.get_printoptions(), torch._tensor_str.PRINT_OPTS.linewidth)\n"
        "from dendrosam.segment._ultralytics import import_ultralytics\n"
        "import_ultralytics()\n"
        "import sys; assert 'ultralytics' in sys.modules\n"
        "print(repr(np.array([20.0, 0.123456])), (np.get_printoptions(), "
        "torch._tensor_str.PRINT_OPTS.linewidth) == before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["array([20.", ",", "0.123])", "True"]
