"""mediapipe FaceMesh landmarks (478 points with irises), the tracker the papers' OpenFace/3DMM fits stand in for.

mediapipe is imported only inside these functions: the generator and the GPU machine never need it.

    >>> with LandmarkDetector() as det:
    ...     pts = det(image)          # (478, 2) float64 pixels (x column, y row), or None if no face
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from talklib.errors import UserError

N_LANDMARKS = 478
#: Eye-corner landmarks (outer corners) whose distance is the inter-ocular distance (IOD).
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
RIGHT_IRIS, LEFT_IRIS = 468, 473


def _as_rgb_uint8(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise UserError(f"landmark detection needs an RGB image of shape (H, W, 3), got {arr.shape}: pass one frame")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        else:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr[..., :3])


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for a moment (C++ logging bypasses Python's sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class LandmarkDetector:
    """A reusable mediapipe FaceMesh (refined irises).

    Call it on an RGB image (H, W, 3) uint8 (or float in [0, 1]); returns (478, 2) pixel coordinates,
    or (478, 3) with ``with_z=True`` (z in the same pixel units, negative = towards the camera), or None.
    ``faces(image)`` returns every face found (up to ``max_faces``). ``video=True`` tracks from frame to
    frame (mediapipe's video mode: frames must come in order), which is steadier on a video than
    detecting each frame afresh.
    """

    def __init__(self, min_detection_confidence: float = 0.5, max_faces: int = 1, video: bool = False):
        import warnings

        warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise UserError(f"mediapipe cannot be imported here ({e}): landmark detection needs the CPU "
                            f"environment from requirements.txt") from None
        with _quiet_stderr():  # mediapipe's C++ start-up log lines, which no setting turns off
            self._mesh = face_mesh.FaceMesh(static_image_mode=not video, max_num_faces=int(max_faces),
                                            refine_landmarks=True,
                                            min_detection_confidence=min_detection_confidence)
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))  # the first call logs too

    def faces(self, image, with_z: bool = False) -> list[np.ndarray]:
        """Every face found: a list of (478, 2) (or (478, 3)) pixel arrays, possibly empty."""
        rgb = _as_rgb_uint8(image)
        h, w = rgb.shape[:2]
        res = self._mesh.process(rgb)
        out = []
        for face in res.multi_face_landmarks or []:
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], np.float64)
            out.append(pts if with_z else pts[:, :2])
        return out

    def __call__(self, image, with_z: bool = False) -> np.ndarray | None:
        found = self.faces(image, with_z)
        return found[0] if found else None

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "LandmarkDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detect_landmarks(image, with_z: bool = False) -> np.ndarray | None:
    """One-off detection on an RGB uint8 image: (478, 2) pixels (x, y), or None when no face is found.

    For many images make one ``LandmarkDetector`` and call it repeatedly (it is ~10x faster).
    """
    with LandmarkDetector() as det:
        return det(image, with_z=with_z)


def inter_ocular_distance(points: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners (33, 263). points: (..., 478, 2|3) -> (...,)."""
    p = np.asarray(points)
    return np.linalg.norm(p[..., LEFT_EYE_OUTER, :2] - p[..., RIGHT_EYE_OUTER, :2], axis=-1)
