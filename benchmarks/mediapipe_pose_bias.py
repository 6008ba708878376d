"""How far mediapipe's own 3D landmarks are from the true head pose (issue 19's rotation target).

Every 8th frame (40 in all; mediapipe finds the face in 32) of the small corpus's training clip, upscaled to 512², goes through mediapipe's face
mesh with z; its 478 3D points are aligned (Procrustes, rotation only) to the same 478 landmarks of the true
head, in the head's frame, and the rotation that does it is compared with the true head rotation. No
morphable-model fit is involved: what is left is the detector's own tilt.

    python benchmarks/mediapipe_pose_bias.py     # prints the geodesic median and the Euler mean / std
"""
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from talklib.speaker.build import ensure_corpus
from talklib.face3d.landmarks import LandmarkDetector
from scipy.spatial.transform import Rotation as R
c = ensure_corpus(str(ROOT / 'data/synthetic/small'), 'small', 0, progress=False).clip(split='train')
fr = c.frames('front')[::8][:40]
H = c.head_pose()[::8][:40]            # (T,4,4) head -> world
L3 = c.landmarks3d()[::8][:40]         # world
cam = c.camera('front'); c2w = np.asarray(cam.c2w_world[0]); w2c = np.linalg.inv(c2w)
errs_true, errs_z = [], []
with LandmarkDetector(video=False) as det:
    for k in range(len(fr)):
        img = cv2.resize(fr[k], (512, 512), interpolation=cv2.INTER_CUBIC)
        p = det(img, with_z=True)
        if p is None: continue
        # truth: head-frame landmarks and the head rotation in camera coordinates
        lm_head = (L3[k] - H[k][:3, 3]) @ H[k][:3, :3]
        Rcam_true = w2c[:3, :3] @ H[k][:3, :3]
        # mediapipe: x right, y down, z away-ish (negative towards camera) -> camera coords (x right, y up, z back)
        q = np.stack([p[:, 0], -p[:, 1], -p[:, 2]], 1)
        A = lm_head - lm_head.mean(0); B = q - q.mean(0)
        U, S, Vt = np.linalg.svd(A.T @ B)
        d = np.sign(np.linalg.det(U @ Vt))
        Rm = (U @ np.diag([1, 1, d]) @ Vt).T       # rotation head -> mediapipe-camera
        rel = R.from_matrix(Rm @ Rcam_true.T)
        errs_z.append(np.degrees(rel.magnitude()))
        errs_true.append(rel.as_euler('xyz', degrees=True))
e = np.array(errs_true)
print('n', len(errs_z), 'geodesic median', np.median(errs_z), 'euler xyz mean', e.mean(0), 'std', e.std(0))
