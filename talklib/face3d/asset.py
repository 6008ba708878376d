"""The head asset: mean shape, triangles and texture of the morphable head, made from a real photo.

The mean shape S̄ of DFA-NeRF Eq. (1) and the texture are taken from scikit-image's astronaut photo
(Eileen Collins, public domain) through mediapipe's 3D face landmarks; the triangles are mediapipe's
face-mesh tessellation. Texture coordinates are where each vertex lands in the photo.

``build_head_asset()`` needs mediapipe (CPU machine); it is run once and its result is committed as
``talklib/face3d/assets/head.npz`` (< 1 MB). ``load_head_asset()`` reads that file and never imports
mediapipe, so the generator also runs where mediapipe cannot be installed.
``python -m talklib.face3d.asset`` rebuilds the file (a test checks that a rebuild matches it).

Vertex layout (V = 551):
  0..467    mediapipe mesh points          468..477  iris centres and rings (refined landmarks)
  478       mouth-cavity centre (behind the lips)
  479..514  first skirt ring outside the face outline (hair/neck from the photo)
  515..550  second skirt ring
Face groups: 0 skin (photo texture), 1 eyes (photo texture, fans onto the iris centres),
2 mouth cavity (dark).
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from talklib.face3d import topology as topo

ASSET_PATH = Path(__file__).parent / "assets" / "head.npz"
#: Outer eye-corner distance of the mean head, metres (adult average ~ 9 cm).
OUTER_CANTHAL_M = 0.09
TEXTURE_SIZE = 256
SKIRT_SCALES = (1.22, 1.45)
SKIRT_DEPTHS_M = (0.025, 0.06)
CAVITY_DEPTH_M = 0.02
GROUP_SKIN, GROUP_EYE, GROUP_MOUTH = 0, 1, 2


def _mesh_triangles() -> np.ndarray:
    """(852, 3) triangles of mediapipe's tessellation (3-cliques of its edge graph minus 2 spurious)."""
    from mediapipe.python.solutions import face_mesh_connections as c

    edges = {tuple(sorted(e)) for e in c.FACEMESH_TESSELATION}
    adj = collections.defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    tris = set()
    for a, b in edges:
        for k in adj[a] & adj[b]:
            tris.add(tuple(sorted((a, b, k))))
    tris -= set(topo.SPURIOUS_TRIANGLES)
    return np.array(sorted(tris), np.int32)


def _fan(loop, centre) -> list[tuple[int, int, int]]:
    return [(loop[i], loop[(i + 1) % len(loop)], centre) for i in range(len(loop))]


def _strip(a, b) -> list[tuple[int, int, int]]:
    out = []
    n = len(a)
    for i in range(n):
        j = (i + 1) % n
        out += [(a[i], a[j], b[i]), (a[j], b[j], b[i])]
    return out


def build_head_asset(image: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Make the asset arrays from a face photo (default: skimage's astronaut). Needs mediapipe.

    Returns vertices (V, 3) float32 metres (x right, y up, z towards the viewer; origin ~ head centre),
    faces (F, 3) int32 (counter-clockwise seen from +z), face_group (F,) uint8, uv (V, 2) float32
    in [0, 1] (u column, v row of the texture), texture (256, 256, 3) uint8.
    """
    from talklib.errors import UserError
    from talklib.face3d.landmarks import detect_landmarks

    if image is None:
        import skimage.data

        image = skimage.data.astronaut()
    image = np.asarray(image)
    pts = detect_landmarks(image, with_z=True)
    if pts is None:
        raise UserError("no face found in the photo: pass a well-lit frontal face photo")
    # texture crop around the face, photo pixels -> uv
    h, w = image.shape[:2]
    centre = pts[:topo.N_MESH, :2].mean(0)
    half = TEXTURE_SIZE // 2
    x0 = int(np.clip(round(centre[0]) - half, 0, max(0, w - TEXTURE_SIZE)))
    y0 = int(np.clip(round(centre[1]) - half, 0, max(0, h - TEXTURE_SIZE)))
    tex = np.zeros((TEXTURE_SIZE, TEXTURE_SIZE, 3), np.uint8)
    crop = image[y0:y0 + TEXTURE_SIZE, x0:x0 + TEXTURE_SIZE, :3]
    tex[:crop.shape[0], :crop.shape[1]] = crop

    # 3D: photo pixels -> metric model frame (x right, y up, z towards the viewer), upright and frontal
    p = np.stack([pts[:, 0], -pts[:, 1], -pts[:, 2]], 1)
    x_axis = p[topo.LEFT_EYE_CORNERS[0]] - p[topo.RIGHT_EYE_CORNERS[0]]
    x_axis /= np.linalg.norm(x_axis)
    up = p[topo.FOREHEAD] - p[topo.CHIN]
    y_axis = up - x_axis * (up @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    rot = np.stack([x_axis, y_axis, z_axis])  # rows: new axes in photo coordinates
    scale = OUTER_CANTHAL_M / np.linalg.norm(p[topo.LEFT_EYE_CORNERS[0]] - p[topo.RIGHT_EYE_CORNERS[0]])
    q = (p - p[:topo.N_MESH].mean(0)) @ rot.T * scale
    q[:, 2] -= q[:topo.N_MESH, 2].max() - 0.10  # nose tip at z = 0.10 m: origin ~ head centre
    q[:, 1] -= 0.02                                     # and a little above the centroid (pivot)
    uv = np.stack([(pts[:, 0] - x0) / TEXTURE_SIZE, (pts[:, 1] - y0) / TEXTURE_SIZE], 1)
    q = close_mouth(q)

    verts = [q]
    uvs = [uv]
    # irises sit slightly in front of the eye opening
    for iris, loop in ((topo.RIGHT_IRIS, topo.RIGHT_EYE_LOOP), (topo.LEFT_IRIS, topo.LEFT_EYE_LOOP)):
        ring_z = q[list(loop), 2].mean()
        q[list(iris), 2] = ring_z - 0.001
    # mouth cavity centre
    loop = list(topo.MOUTH_LOOP)
    cav = q[loop].mean(0) - np.array([0, 0, CAVITY_DEPTH_M])
    verts.append(cav[None])
    uvs.append(uv[loop].mean(0)[None])
    # skirt rings around the face outline
    oval = list(topo.FACE_OVAL)
    c3 = q[oval].mean(0)
    c2 = uv[oval].mean(0)
    rings = []
    start = topo.N_LANDMARKS + 1
    for k, (s, d) in enumerate(zip(SKIRT_SCALES, SKIRT_DEPTHS_M)):
        r = q[oval].copy()
        r[:, :2] = c3[:2] + (r[:, :2] - c3[:2]) * s
        r[:, 2] = r[:, 2] - d
        verts.append(r)
        uvs.append(c2 + (uv[oval] - c2) * s)
        rings.append(list(range(start + k * len(oval), start + (k + 1) * len(oval))))
    V = np.concatenate(verts).astype(np.float32)
    UV = np.clip(np.concatenate(uvs), 0.0, 1.0).astype(np.float32)

    faces, groups = [], []
    mesh = _mesh_triangles()
    faces += [tuple(t) for t in mesh]
    groups += [GROUP_SKIN] * len(mesh)
    for lp, ctr in ((topo.RIGHT_EYE_LOOP, topo.RIGHT_IRIS[0]), (topo.LEFT_EYE_LOOP, topo.LEFT_IRIS[0])):
        f = _fan(list(lp), ctr)
        faces += f
        groups += [GROUP_EYE] * len(f)
    f = _fan(loop, topo.N_LANDMARKS)
    faces += f
    groups += [GROUP_MOUTH] * len(f)
    for a, b in ((oval, rings[0]), (rings[0], rings[1])):
        f = _strip(a, b)
        faces += f
        groups += [GROUP_SKIN] * len(f)
    F = np.array(faces, np.int32)
    # orient every triangle counter-clockwise as seen from +z (the viewer)
    n = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    flip = n[:, 2] < 0
    F[flip] = F[flip][:, [0, 2, 1]]
    return {"vertices": V, "faces": F, "face_group": np.array(groups, np.uint8), "uv": UV, "texture": tex}


def close_mouth(q: np.ndarray) -> np.ndarray:
    """Close the photo's open (smiling, teeth showing) mouth: the neutral head has its lips together.

    Inner-lip pairs meet (upper moves 40 %, lower 60 % of their gap); the lower lip and chin follow the
    lower inner lip with a smooth falloff. Texture coordinates are untouched, so the teeth vanish.
    """
    q = q.copy()
    up = list(topo.LIPS_INNER_UPPER[1:-1])
    lo = list(topo.LIPS_INNER_LOWER[1:-1])
    gap = q[up, 1] - q[lo, 1]                                   # (9,) > 0 where open
    centre = q[list(topo.MOUTH_LOOP)].mean(0)
    line_y = (q[up, 1] + q[lo, 1]) / 2
    lower_shift = 0.6 * np.clip(gap, 0, None)
    upper_shift = -0.4 * np.clip(gap, 0, None)
    w_face = np.exp(-np.sum((q[:, :2] - centre[:2]) ** 2, 1) / (2 * 0.03 ** 2))
    below = q[:, 1] < np.interp(q[:, 0], np.sort(q[lo, 0]), line_y[np.argsort(q[lo, 0])]) - 1e-4
    order = np.argsort(q[lo, 0])
    shift_lo = np.interp(q[:, 0], q[lo, 0][order], lower_shift[order])
    dy = np.where(below, shift_lo * w_face, 0.0)
    dy[list(topo.LIPS_INNER_UPPER) + list(topo.LIPS_OUTER_UPPER)] = 0.0
    q[:, 1] += dy
    q[up, 1] += upper_shift
    q[lo, 1] = q[up, 1] - 1e-4
    return q


def save_head_asset(asset: dict[str, np.ndarray], path: str | Path = ASSET_PATH) -> Path:
    import io

    from talklib.outputs import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, **asset)
    return atomic_write_bytes(path, buf.getvalue())


def load_head_asset(path: str | Path = ASSET_PATH) -> dict[str, np.ndarray]:
    """The committed asset (no mediapipe needed). Keys as ``build_head_asset``."""
    from talklib.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"head asset {path} is missing: rebuild it with `python -m talklib.face3d.asset` "
                        f"(needs mediapipe)")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


if __name__ == "__main__":
    out = save_head_asset(build_head_asset())
    print(f"wrote {out} ({out.stat().st_size} bytes)")
