"""Procedural indoor scenes: a stand-in for NYUv2 with segmentation, depth and surface normals.

Ours (conventions §9, "procedural shapes scenes"); no external recipe. Each image is a ray-cast
(vectorized numpy, one pinhole camera at the origin) of a box-shaped room, floor, ceiling and walls,
holding 0..``clutter`` objects resting on the floor: spheres, yaw-rotated boxes and vertical
cylinders. Objects intersect and occlude each other freely.

Per pixel we store, in the MTAN NYUv2 tensor layout (:class:`~paper_repro.data._common.SceneData`):

- ``image (3, H, W)`` float32 in [0, 1]: Lambertian shading of per-surface colours (class palette
  plus per-surface colour jitter), a checkerboard texture on the floor, stripes on the walls, and
  Gaussian pixel noise; ``noise`` scales the colour jitter, texture contrast and pixel noise;
- ``seg (H, W)`` int64 in {0..4}: :data:`SCENE_CLASSES` = wall (walls and ceiling), floor, sphere,
  box, cylinder. No ignore label is produced (``-1`` is reserved for real data);
- ``depth (1, H, W)`` float32: the z-coordinate of the hit point in camera coordinates (metres-like,
  ≈ 0.5 to 10), as NYUv2 depth maps. **0 marks invalid pixels**, produced only when
  ``invalid_prob > 0``: then each image, with that probability, gets one rectangular sensor hole;
- ``normal (3, H, W)`` float32 unit vectors in camera coordinates (x right, y down, z forward),
  oriented towards the camera; 0 where depth is invalid.

The camera (horizontal field of view ``fov`` degrees, pixel centres at (u + 0.5, v + 0.5)) is pitched
down by 10-30° and yawed by ±20° per image; depth, normals and :func:`backproject` use the camera
frame, so ``normals_from_depth(depth)`` reproduces ``normal`` on planar regions (tested).

Derived label maps (added for CSO's 5-task setting, ``specs/cso.md`` §9 P2; pure functions of ``seg``, so every
output above is unchanged): :func:`saliency_from_seg` (objects vs room, the salient-object task) and
:func:`edges_from_seg` (semantic boundaries, the auxiliary edge task).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from ._common import SceneData, SeedLike, Splits, as_generator, check_fraction, check_nonnegative, check_positive

__all__ = ["SCENE_CLASSES", "Intrinsics", "intrinsics", "render_scenes", "scenes", "backproject", "normals_from_depth",
           "SALIENT_CLASSES", "saliency_from_seg", "edges_from_seg"]

logger = logging.getLogger(__name__)

#: Semantic classes of the procedural scenes, by id.
SCENE_CLASSES: tuple[str, ...] = ("wall", "floor", "sphere", "box", "cylinder")
_WALL, _FLOOR, _SPHERE, _BOX, _CYLINDER = range(5)
_PALETTE = np.array(
    [[0.75, 0.72, 0.65], [0.55, 0.40, 0.28], [0.80, 0.25, 0.20], [0.25, 0.45, 0.80], [0.30, 0.70, 0.35]]
)
_N_PLANES = 5  # floor, ceiling, left, right, back


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels; pixel (v, u) has its centre at (u + 0.5, v + 0.5)."""

    fx: float
    fy: float
    cx: float
    cy: float


def intrinsics(height: int, width: int, fov: float = 60.0) -> Intrinsics:
    """Square-pixel intrinsics with horizontal field of view ``fov`` degrees, principal point at the centre."""
    check_positive("height", height, integer=True)
    check_positive("width", width, integer=True)
    if not 0 < fov < 150:
        raise ValueError(f"Parameter `fov` should be in (0, 150) degrees. Found `fov = {fov!r}`.")
    f = width / (2.0 * math.tan(math.radians(fov) / 2.0))
    return Intrinsics(fx=f, fy=f, cx=width / 2.0, cy=height / 2.0)


def _rays(height: int, width: int, k: Intrinsics) -> np.ndarray:
    """Camera-frame ray directions with z = 1, shape (H, W, 3)."""
    u = (np.arange(width) + 0.5 - k.cx) / k.fx
    v = (np.arange(height) + 0.5 - k.cy) / k.fy
    uu, vv = np.meshgrid(u, v)
    return np.stack([uu, vv, np.ones_like(uu)], axis=-1)


def backproject(depth: torch.Tensor, k: Intrinsics) -> torch.Tensor:
    """Camera-frame points P = depth·((u + 0.5 − cx)/fx, (v + 0.5 − cy)/fy, 1).

    ``depth (N, 1, H, W) → points (N, 3, H, W)``, in the dtype and device of ``depth``.
    """
    h, w = depth.shape[-2:]
    rays = torch.as_tensor(_rays(h, w, k), dtype=depth.dtype, device=depth.device).permute(2, 0, 1)
    return depth * rays


def normals_from_depth(depth: torch.Tensor, k: Intrinsics) -> torch.Tensor:
    """Unit normals from central differences of back-projected depth, oriented towards the camera.

    ``(N, 1, H, W) → (N, 3, H, W)``; exact on planar regions away from edges (one-sided differences at
    the image border, garbage across depth discontinuities and invalid pixels).
    """
    p = backproject(depth, k)
    dv, du = torch.gradient(p, dim=(-2, -1))
    n = torch.cross(du, dv, dim=1)
    n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.where((n * p).sum(dim=1, keepdim=True) > 0, -n, n)


def _rotation(pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Camera-to-world rotations (N, 3, 3): pitch down about x, then yaw about y."""
    cp, sp, cy, sy = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    one, zero = np.ones_like(pitch), np.zeros_like(pitch)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, sp], -1), np.stack([zero, -sp, cp], -1)], -2)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2)
    return ry @ rx


class _ZBuffer:
    """Nearest-hit bookkeeping over a chunk of rays (N, H, W)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.t = np.full(shape, np.inf)
        self.surface = np.zeros(shape, dtype=np.int64)
        self.normal = np.zeros(shape + (3,))

    def update(self, t: np.ndarray, hit: np.ndarray, normal: np.ndarray, surface: int) -> None:
        better = hit & (t > 1e-6) & (t < self.t)
        self.t = np.where(better, t, self.t)
        self.surface = np.where(better, surface, self.surface)
        self.normal = np.where(better[..., None], normal, self.normal)


def _render_chunk(
    n: int, height: int, width: int, k: Intrinsics, rng: np.random.Generator, noise: float, clutter: int,
    invalid_prob: float,
) -> tuple[np.ndarray, ...]:
    """Render ``n`` images: (image (N, H, W, 3), seg (N, H, W), depth (N, H, W), normal (N, H, W, 3))."""
    d_cam = _rays(height, width, k)  # (H, W, 3)
    rot = _rotation(np.radians(rng.uniform(10, 30, n)), np.radians(rng.uniform(-20, 20, n)))
    d = np.einsum("nij,hwj->nhwi", rot, d_cam)  # world-frame directions, (N, H, W, 3)
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    col = lambda a: a[:, None, None]  # noqa: E731  per-image scalar → broadcastable
    floor, ceil = rng.uniform(1.2, 1.8, n), rng.uniform(0.6, 1.2, n)
    left, right, back = rng.uniform(2.0, 3.5, n), rng.uniform(2.0, 3.5, n), rng.uniform(4.5, 7.0, n)
    zb = _ZBuffer(dx.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        planes = [  # (t, hit, world normal) for floor, ceiling, left, right, back
            (col(floor) / dy, dy > 0, (0.0, -1.0, 0.0)),
            (-col(ceil) / dy, dy < 0, (0.0, 1.0, 0.0)),
            (-col(left) / dx, dx < 0, (1.0, 0.0, 0.0)),
            (col(right) / dx, dx > 0, (-1.0, 0.0, 0.0)),
            (col(back) / dz, dz > 0, (0.0, 0.0, -1.0)),
        ]
        for s, (t, hit, nrm) in enumerate(planes):
            zb.update(t, hit, np.broadcast_to(np.array(nrm), dx.shape + (3,)), s)

        # Objects: slot s of image i is active if s < count[i]; kind drawn per slot.
        count = rng.integers(1, clutter + 1, n) if clutter > 0 else np.zeros(n, dtype=np.int64)
        kinds = rng.integers(_SPHERE, _CYLINDER + 1, (n, max(clutter, 1)))
        slot_class = np.full((n, _N_PLANES + max(clutter, 1)), _WALL)
        slot_class[:, 0] = _FLOOR
        for s in range(clutter):
            active = s < count
            if not active.any():
                continue
            kind = kinds[:, s]
            slot_class[:, _N_PLANES + s] = np.where(active, kind, _WALL)
            size = rng.uniform(0.3, 0.7, n)
            height_obj = rng.uniform(0.4, 1.3, n)
            cx = rng.uniform(-left + size + 0.1, right - size - 0.1)
            cz = rng.uniform(1.5, back - size - 0.1)
            yaw = rng.uniform(0, np.pi, n)
            depth_half = rng.uniform(0.2, 0.6, n)
            # Sphere: centre (cx, floor - r, cz).
            cy = floor - size
            b = dx * col(cx) + dy * col(cy) + dz * col(cz)
            a = dx**2 + dy**2 + dz**2
            disc = b**2 - a * col(cx**2 + cy**2 + cz**2 - size**2)
            t_sph = (b - np.sqrt(np.maximum(disc, 0))) / a
            hit_sph = (disc > 0) & col(active & (kind == _SPHERE))
            n_sph = (t_sph[..., None] * d - np.stack([cx, cy, cz], -1)[:, None, None]) / col(size)[..., None]
            zb.update(t_sph, hit_sph, n_sph, _N_PLANES + s)
            # Cylinder: vertical axis through (cx, cz), radius `size`, y in [floor - h, floor].
            a2 = dx**2 + dz**2
            b2 = dx * col(cx) + dz * col(cz)
            disc2 = b2**2 - a2 * col(cx**2 + cz**2 - size**2)
            t_side = (b2 - np.sqrt(np.maximum(disc2, 0))) / a2
            y_side = t_side * dy
            top = floor - height_obj
            is_cyl = col(active & (kind == _CYLINDER))
            hit_side = is_cyl & (disc2 > 0) & (y_side >= col(top)) & (y_side <= col(floor))
            n_side = np.stack([t_side * dx - col(cx), np.zeros_like(t_side), t_side * dz - col(cz)], -1)
            n_side = n_side / col(size)[..., None]
            zb.update(t_side, hit_side, n_side, _N_PLANES + s)
            t_cap = col(top) / dy
            in_disk = (t_cap * dx - col(cx)) ** 2 + (t_cap * dz - col(cz)) ** 2 <= col(size) ** 2
            hit_cap = is_cyl & col(top > 0) & (dy > 0) & in_disk
            zb.update(t_cap, hit_cap, np.broadcast_to(np.array([0.0, -1.0, 0.0]), d.shape), _N_PLANES + s)
            # Box: centre (cx, floor - h/2, cz), half extents (size, h/2, depth_half), yawed about y.
            centre = np.stack([cx, floor - height_obj / 2, cz], -1)
            half = np.stack([size, height_obj / 2, depth_half], -1)
            cyaw, syaw = np.cos(yaw), np.sin(yaw)
            zero, one = np.zeros(n), np.ones(n)
            r_box = np.stack([np.stack([cyaw, zero, syaw], -1), np.stack([zero, one, zero], -1)], -2)
            r_box = np.concatenate([r_box, np.stack([-syaw, zero, cyaw], -1)[:, None]], -2)
            o_loc = -np.einsum("nji,nj->ni", r_box, centre)[:, None, None]  # R^T (0 - C)
            e_loc = np.einsum("nji,nhwj->nhwi", r_box, d)
            e_loc = np.where(np.abs(e_loc) < 1e-12, 1e-12, e_loc)
            t1 = (-half[:, None, None] - o_loc) / e_loc
            t2 = (half[:, None, None] - o_loc) / e_loc
            t_near, t_far = np.minimum(t1, t2), np.maximum(t1, t2)
            axis = t_near.argmax(-1)
            t_in, t_out = t_near.max(-1), t_far.min(-1)
            hit_box = col(active & (kind == _BOX)) & (t_in <= t_out) & (t_in > 0)
            n_loc = -np.sign(np.take_along_axis(e_loc, axis[..., None], -1)) * (np.arange(3) == axis[..., None])
            n_box = np.einsum("nij,nhwj->nhwi", r_box, n_loc)
            zb.update(t_in, hit_box, n_box, _N_PLANES + s)

    depth = zb.t  # z-depth, since camera-frame rays have z = 1
    normal = np.einsum("nji,nhwj->nhwi", rot, zb.normal)  # world → camera: R^T n
    seg = np.take_along_axis(slot_class, zb.surface.reshape(n, -1), 1).reshape(zb.surface.shape)

    # Appearance: per-surface colour, Lambertian shading, textures, pixel noise.
    n_surf = slot_class.shape[1]
    colours = _PALETTE[slot_class] + 0.15 * noise * rng.standard_normal((n, n_surf, 3))
    colour = np.take_along_axis(colours, zb.surface.reshape(n, -1, 1), 1).reshape(zb.normal.shape)
    light = np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-1.0, -0.5, n), rng.uniform(-1.0, -0.3, n)], -1)
    light /= np.linalg.norm(light, axis=-1, keepdims=True)  # camera frame, points from the scene to the light
    shade = 0.4 + 0.6 * np.clip(np.einsum("nhwi,ni->nhw", normal, light), 0, None)
    p_world = depth[..., None] * d
    period = col(rng.uniform(0.3, 0.8, n))
    checker = (np.floor(p_world[..., 0] / period) + np.floor(p_world[..., 2] / period)) % 2
    stripes = np.floor(p_world[..., 1] / (period * 0.5)) % 2
    texture = np.where(zb.surface == 0, checker, np.where(zb.surface < _N_PLANES, stripes, 0.5)) - 0.5
    image = colour * shade[..., None] * (1 + (0.1 + 0.2 * noise) * texture[..., None])
    image = image + 0.03 * noise * rng.standard_normal(image.shape)

    if invalid_prob > 0:
        holes = rng.random(n) < invalid_prob
        hh, ww = rng.integers(height // 8 + 1, height // 3 + 2, n), rng.integers(width // 8 + 1, width // 3 + 2, n)
        top_, left_ = rng.integers(0, height - hh + 1), rng.integers(0, width - ww + 1)
        rows, cols = np.arange(height)[None, :, None], np.arange(width)[None, None, :]
        in_rows = (rows >= col(top_)) & (rows < col(top_ + hh))
        mask = holes[:, None, None] & in_rows & (cols >= col(left_)) & (cols < col(left_ + ww))
        depth = np.where(mask, 0.0, depth)
        normal = np.where(mask[..., None], 0.0, normal)
    return np.clip(image, 0, 1), seg, depth, normal


def render_scenes(
    n: int,
    *,
    size: tuple[int, int] | int = 32,
    seed: SeedLike = 0,
    noise: float = 1.0,
    clutter: int = 4,
    invalid_prob: float = 0.0,
    fov: float = 60.0,
    chunk: int = 128,
) -> SceneData:
    """Render ``n`` procedural scenes (see the module docstring for the exact content).

    :param n: number of images.
    :param size: ``(H, W)`` or one int for square images (32 and 64 are the usual choices).
    :param seed: the data seed; the same seed and arguments give identical tensors.
    :param noise: appearance difficulty ≥ 0: colour jitter 0.15·noise per surface, texture contrast
        0.1 + 0.2·noise, pixel noise 0.03·noise. ``0`` gives clean palette colours.
    :param clutter: maximum number of objects per image (the count is uniform in 1..clutter; 0 = empty room).
    :param invalid_prob: probability that an image gets a rectangular hole of invalid depth (depth 0).
    :param fov: horizontal field of view in degrees (intrinsics from :func:`intrinsics`).
    :param chunk: images rendered at once (bounds memory: about 200 bytes per pixel per image).
    """
    height, width = (size, size) if isinstance(size, int) else size
    check_positive("n", n, integer=True)
    check_nonnegative("noise", noise)
    check_nonnegative("clutter", clutter, integer=True)
    check_fraction("invalid_prob", invalid_prob, high=1.0 + 1e-12)
    check_positive("chunk", chunk, integer=True)
    k = intrinsics(height, width, fov)
    rng = as_generator(seed)
    outs = [
        _render_chunk(min(chunk, n - start), height, width, k, rng, noise, clutter, invalid_prob)
        for start in range(0, n, chunk)
    ]
    image, seg, depth, normal = (np.concatenate(parts) for parts in zip(*outs))
    return SceneData(
        image=torch.from_numpy(image.transpose(0, 3, 1, 2).astype(np.float32)),
        seg=torch.from_numpy(seg),
        depth=torch.from_numpy(depth[:, None].astype(np.float32)),
        normal=torch.from_numpy(normal.transpose(0, 3, 1, 2).astype(np.float32)),
    )


def scenes(
    n_train: int = 800,
    n_val: int = 100,
    n_test: int = 200,
    *,
    size: tuple[int, int] | int = 32,
    seed: SeedLike = 0,
    noise: float = 1.0,
    clutter: int = 4,
    invalid_prob: float = 0.0,
    fov: float = 60.0,
) -> Splits[SceneData]:
    """Train / val / test procedural scene sets, each rendered from its own child of the data seed.

    Arguments as in :func:`render_scenes`. ``meta`` holds the classes, the intrinsics and the knobs.
    """
    rng = as_generator(seed)
    children = rng.spawn(3)
    kwargs = dict(size=size, noise=noise, clutter=clutter, invalid_prob=invalid_prob, fov=fov)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    parts = {name: render_scenes(m, seed=g, **kwargs) for (name, m), g in zip(sizes.items(), children)}
    h, w = parts["train"].seg.shape[-2:]
    k = intrinsics(h, w, fov)
    meta = {
        "recipe": "procedural scenes (ours; NYUv2 stand-in, conventions §9)",
        "classes": list(SCENE_CLASSES),
        "intrinsics": {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy},
        "seed": seed if isinstance(seed, int) else "generator",
        "size": [h, w], "noise": noise, "clutter": clutter, "invalid_prob": invalid_prob,
        "invalid_depth_value": 0.0,
    }
    return Splits(**parts, meta=meta)


#: Classes that count as salient (foreground) in :func:`saliency_from_seg`: the objects, not the room.
SALIENT_CLASSES: tuple[str, ...] = ("sphere", "box", "cylinder")


def _check_seg(seg: torch.Tensor) -> torch.Tensor:
    if not isinstance(seg, torch.Tensor) or seg.dim() != 3 or seg.dtype.is_floating_point or seg.dtype == torch.bool:
        raise ValueError(f"Parameter `seg` should be an integer tensor of shape (N, H, W). Found "
                         f"{type(seg).__name__} {tuple(getattr(seg, 'shape', ()))} {getattr(seg, 'dtype', '')}.")
    return seg


def saliency_from_seg(seg: torch.Tensor) -> torch.Tensor:
    """Salient-object map ``(N, 1, H, W)`` float32: 1 where ``seg`` is an object class (:data:`SALIENT_CLASSES`:
    sphere, box, cylinder), 0 on the room (wall, ceiling, floor) and on ignored pixels (``-1``).

    [decision] Our stand-in for PASCAL-Context's salient-object task in CSO's 5-task setting (``specs/cso.md`` §9
    P2: "objects vs background"). ``seg (N, H, W)`` int64 class ids as in :class:`SceneData`.
    """
    seg = _check_seg(seg)
    ids = torch.tensor([SCENE_CLASSES.index(c) for c in SALIENT_CLASSES], device=seg.device)
    return torch.isin(seg, ids).to(torch.float32)[:, None]


def edges_from_seg(seg: torch.Tensor) -> torch.Tensor:
    """Semantic-boundary map ``(N, 1, H, W)`` float32: 1 at pixel p when one of its 4-neighbours inside the image
    has another label than p (so both sides of a boundary are marked), else 0.

    [decision] The auxiliary edge task of CSO's 5-task setting (``specs/cso.md`` §9 P2: "an auxiliary edge map from
    segment boundaries"); boundaries between two objects of the same class are not marked (semantic labels
    only). An ignored pixel (``-1``) differs from any class, so holes in real labels get outlined.
    """
    seg = _check_seg(seg)
    edge = torch.zeros_like(seg, dtype=torch.bool)
    dv = seg[:, 1:, :] != seg[:, :-1, :]
    dh = seg[:, :, 1:] != seg[:, :, :-1]
    edge[:, 1:, :] |= dv
    edge[:, :-1, :] |= dv
    edge[:, :, 1:] |= dh
    edge[:, :, :-1] |= dh
    return edge.to(torch.float32)[:, None]
