"""The whole per-ray work of a render in Triton: ray marching through the occupancy grid, the
conditional field at each occupied sample, and Eq. (5) compositing with early termination.

The PyTorch fast path (``talklib.nerf.renderer.render_rays``) launches some 40 kernels per pass and writes every
intermediate (samples, masks, gathered codes, each MLP layer, a dense (R, S, C) feature block) to GPU
memory. Here two kernels do it all, keeping a sample's intermediates in registers:

1. ``_occupancy_kernel``, one ray per lane: clip the ray to the head box and mark its occupied samples
   (a bit mask of at most 62 samples, the test of ``OccupancyGrid.query``), and count them;
2. ``_march_kernel``, persistent programs of ``block`` lanes: each lane takes a ray from a queue
   (rays by count, most first) and marches it: per round it takes the ray's next occupied sample, the
   field ``ConditionalField.forward`` runs on the ``block`` samples of the lanes at once (its layers as
   small fp16 tensor-core matrix products with fp32 accumulation, the tri-plane lookups as bilinear
   gathers from channels-last planes), and the ray composites it, Eq. (5):
   w_i = T_i (1 - exp(-sigma_i delta_i)), F += w_i z_i, T_{i+1} = T_i exp(-sigma_i delta_i).
   A ray is done when it has no occupied sample left or T <= T_MIN (what the PyTorch fast path's
   second pass drops too); its lane writes it out and takes the next ray of the queue, so no lane
   idles while its neighbours' rays go on.

The condition code enters each network's first layer linearly, so that part is one bias per frame
(``pack_field``), computed once per call instead of once per sample. Forward only: training keeps the
differentiable PyTorch path. Set ``TRITON_INTERPRET=1`` to run the kernels on a CPU (slowly).
On an H200 this renders the full speaker at 512^2 in 0.35 ms a frame at 8 frames per call against
5.2 ms for the reference (benchmarks/RESULTS.md, "The fused Triton renderer").
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

T_MIN = 1e-4        # transmittance at which a ray is done (the PyTorch fast path's second-pass test)
MAX_SAMPLES = 62    # occupied samples of a ray are bits of an int64


def unsupported(model) -> str | None:
    """Why the fused kernel cannot render ``model`` (a TalkingNeRF), or None when it can."""
    from talklib.nerf.field import ConditionalField

    if not isinstance(model.field, ConditionalField):
        return f"its field is a {type(model.field).__name__}; the kernel implements talklib's ConditionalField"
    f = model.field.cfg
    if f.view_dir:
        return "the colour depends on the view direction (view_dir=True)"
    if model.cfg.n_samples > MAX_SAMPLES:
        return f"{model.cfg.n_samples} samples per ray (at most {MAX_SAMPLES})"
    if f.hidden < 16 or f.hidden & (f.hidden - 1):
        return f"MLP width {f.hidden} (a power of two from 16)"
    if f.feat_dim > 64:
        return f"feature size {f.feat_dim} (at most 64)"
    return None


def _p2(n: int, lo: int = 16) -> int:
    return max(lo, triton.next_power_of_2(n))


def _pad(w: Tensor, rows: int, cols: int) -> Tensor:
    out = torch.zeros(rows, cols, device=w.device, dtype=torch.float32)
    out[:w.shape[0], :w.shape[1]] = w.detach()
    return out


@torch.no_grad()
def pack_field(model, codes: Tensor, dtype: torch.dtype = torch.float16) -> dict:
    """Weights of ``model.field`` laid out for the kernel (``pack_weights``) and the per-frame
    first-layer biases from the codes (B, code_dim): the code's share of each first layer,
    W[:, code] @ code + b, is the same for every sample of a frame."""
    fld, f = model.field, model.field.cfg
    p = dict(pack_weights(model, dtype))
    code = codes[:, :f.cond_code].float()
    first = lambda layer, n: code @ layer.weight[:, n:].t().float() + layer.bias.float()  # noqa: E731
    pe = 3 * (2 * f.deform_freqs + 1)
    dbias = (first(fld.deform_net[0], pe) if f.deform
             else torch.zeros(codes.shape[0], f.hidden, device=codes.device))
    gbias = first(fld.density_net[0], fld.grid.out_dim)
    cbias = first(fld.color_net[0], f.geo_dim)
    p["fbias"] = torch.stack([dbias, gbias, cbias], dim=1).contiguous()             # (B, 3, H)
    p["light"] = (codes[:, f.cond_code:f.cond_code + 27].float().contiguous() if f.illu_dim
                  else torch.zeros(codes.shape[0], 27, device=codes.device))
    return p


def pack_weights(model, dtype: torch.dtype = torch.float16) -> dict:
    """The field's weights for the kernel: (in, out) matrices in ``dtype``, zero-padded to powers of
    two, and the tri-planes channels-last. Kept on the model until a parameter changes."""
    params = list(model.field.parameters())
    key = (dtype, tuple((q.data_ptr(), q._version) for q in params))
    cached = getattr(model, "_march_weights", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    p = _pack_weights(model, dtype)
    model._march_weights = (key, p)
    return p


def _pack_weights(model, dtype: torch.dtype) -> dict:
    fld, f = model.field, model.field.cfg
    H = f.hidden
    dev = fld.density_net[0].weight.device
    half = lambda w: w.detach().to(dtype).contiguous()  # noqa: E731
    p: dict = {}
    pe = 3 * (2 * f.deform_freqs + 1)
    if f.deform:
        l1, l2, l3 = fld.deform_net[0], fld.deform_net[2], fld.deform_net[4]
        p["dw1"] = half(_pad(l1.weight[:, :pe].t(), _p2(pe), H))
        p["dw2"], p["db2"] = half(l2.weight.t()), l2.bias.detach().float().contiguous()
        p["dw3"], p["db3"] = half(_pad(l3.weight.t(), H, 16)), _pad(l3.bias[None], 1, 16)[0].contiguous()
    else:
        p["dw1"] = p["dw2"] = p["db2"] = p["dw3"] = p["db3"] = torch.zeros(1, device=dev)
    g1, g2, g3 = fld.density_net[0], fld.density_net[2], fld.density_net[4]
    pc = fld.grid.channels
    pcol = _p2(3 * pc)
    nl = len(fld.grid.resolutions)
    w1 = g1.weight[:, :3 * pc * nl].t().reshape(nl, 3 * pc, H)
    p["gw1"] = half(torch.stack([_pad(w, pcol, H) for w in w1]))
    p["gw2"], p["gb2"] = half(g2.weight.t()), g2.bias.detach().float().contiguous()
    geo_pad = _p2(1 + f.geo_dim)
    p["gw3"], p["gb3"] = half(_pad(g3.weight.t(), H, geo_pad)), _pad(g3.bias[None], 1, geo_pad)[0].contiguous()
    c1, c2 = fld.color_net[0], fld.color_net[2]
    cw1 = torch.zeros(geo_pad, H, device=dev)
    cw1[1:1 + f.geo_dim] = c1.weight[:, :f.geo_dim].t()       # column 0 of the density output is sigma
    p["cw1"] = half(cw1)
    nraw = f.feat_dim + (3 if f.illu_dim else 0)
    p["cw2"], p["cb2"] = half(_pad(c2.weight.t(), H, _p2(nraw))), _pad(c2.bias[None], 1, _p2(nraw))[0].contiguous()
    # planes: per level (3, C, r, r) -> channels-last (3, r, r, C), concatenated flat
    planes = [q.detach().permute(0, 2, 3, 1).reshape(-1) for q in fld.grid.planes]
    p["planes"] = half(torch.cat(planes))
    offs = [0]
    for q in planes[:-1]:
        offs.append(offs[-1] + q.numel())
    p["plane_res"] = torch.tensor(fld.grid.resolutions, dtype=torch.int32, device=dev)
    p["plane_off"] = torch.tensor(offs, dtype=torch.int64, device=dev)
    p["const"] = dict(HID=H, PE_PAD=_p2(pe), PE_FREQS=f.deform_freqs, DEFORM=f.deform, PC=pc, PCOL=pcol,
                      LEVELS=nl, GEO_PAD=geo_pad, RAW_PAD=_p2(nraw), FD=f.feat_dim,
                      ILLU=bool(f.illu_dim))
    p["deform_scale"] = float(f.deform_scale)
    return p


@triton.jit
def _col(tile, cols, j):
    """Column j of a (BLOCK, N) tile -> (BLOCK,)."""
    return tl.sum(tl.where(cols[None, :] == j, tile, 0.0), axis=1)


@triton.jit
def _silu(x):
    return x / (1.0 + tl.exp(-x))


@triton.jit
def _occupancy_kernel(o_ptr, d_ptr, occ_ptr, bits_ptr, tn_ptr, step_ptr, count_ptr,
                      R, cx, cy, cz, radius, near, far,
                      S: tl.constexpr, OCC_RES: tl.constexpr, BLOCK: tl.constexpr):
    """Step 1, per ray: the head box, the sample spacing and the occupied samples as a bit mask."""
    rays = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    rmask = rays < R
    ox = tl.load(o_ptr + rays * 3, mask=rmask, other=0.0)
    oy = tl.load(o_ptr + rays * 3 + 1, mask=rmask, other=0.0)
    oz = tl.load(o_ptr + rays * 3 + 2, mask=rmask, other=0.0)
    dx = tl.load(d_ptr + rays * 3, mask=rmask, other=1.0)
    dy = tl.load(d_ptr + rays * 3 + 1, mask=rmask, other=1.0)
    dz = tl.load(d_ptr + rays * 3 + 2, mask=rmask, other=1.0)
    # the head box (sampling.ray_box) and stratified sample spacing (sampling.stratified_samples)
    ix = 1.0 / tl.where(tl.abs(dx) < 1e-9, 1e-9, dx)
    iy = 1.0 / tl.where(tl.abs(dy) < 1e-9, 1e-9, dy)
    iz = 1.0 / tl.where(tl.abs(dz) < 1e-9, 1e-9, dz)
    ax, bx = (cx - radius - ox) * ix, (cx + radius - ox) * ix
    ay, by = (cy - radius - oy) * iy, (cy + radius - oy) * iy
    az, bz = (cz - radius - oz) * iz, (cz + radius - oz) * iz
    tn = tl.maximum(tl.maximum(tl.minimum(ax, bx), tl.minimum(ay, by)), tl.minimum(az, bz))
    tf = tl.minimum(tl.minimum(tl.maximum(ax, bx), tl.maximum(ay, by)), tl.maximum(az, bz))
    tn = tl.maximum(tn, near)
    tf = tl.minimum(tf, far)
    step = tl.maximum(tf - tn, 0.0) / S
    # occupied samples (OccupancyGrid.query; valid = delta > 0 and inside the box)
    bits = tl.zeros((BLOCK,), dtype=tl.int64)
    count = tl.zeros((BLOCK,), dtype=tl.int32)
    for s in range(S):
        tq = tn + (s + 0.5) * step
        qx = (ox + tq * dx - cx) / radius
        qy = (oy + tq * dy - cy) / radius
        qz = (oz + tq * dz - cz) / radius
        inside = (tl.abs(qx) <= 1.0) & (tl.abs(qy) <= 1.0) & (tl.abs(qz) <= 1.0) & (step > 0) & rmask
        kx = ((tl.minimum(tl.maximum(qx, -1.0), 1.0 - 1e-6) + 1.0) * 0.5 * OCC_RES).to(tl.int32)
        ky = ((tl.minimum(tl.maximum(qy, -1.0), 1.0 - 1e-6) + 1.0) * 0.5 * OCC_RES).to(tl.int32)
        kz = ((tl.minimum(tl.maximum(qz, -1.0), 1.0 - 1e-6) + 1.0) * 0.5 * OCC_RES).to(tl.int32)
        occ = tl.load(occ_ptr + (kx * OCC_RES + ky) * OCC_RES + kz, mask=inside, other=0)
        hit = inside & (occ != 0)
        bits = bits | tl.where(hit, tl.full((BLOCK,), 1, tl.int64) << s, 0)
        count += hit.to(tl.int32)
    tl.store(bits_ptr + rays, bits, mask=rmask)
    tl.store(tn_ptr + rays, tn, mask=rmask)
    tl.store(step_ptr + rays, step, mask=rmask)
    tl.store(count_ptr + rays, count, mask=rmask)


@triton.jit
def _march_kernel(o_ptr, d_ptr, order_ptr, next_ptr, bits_ptr, tn_ptr, step_ptr, out_ptr, acc_ptr, planes_ptr,
                  pres_ptr, poff_ptr, dw1_ptr, dw2_ptr, db2_ptr, dw3_ptr, db3_ptr, gw1_ptr, gw2_ptr, gb2_ptr,
                  gw3_ptr, gb3_ptr, cw1_ptr, cw2_ptr, cb2_ptr, fbias_ptr, light_ptr,
                  R, rays_per_frame, cx, cy, cz, radius, deform_scale,
                  HID: tl.constexpr, PE_PAD: tl.constexpr,
                  PE_FREQS: tl.constexpr, DEFORM: tl.constexpr, PC: tl.constexpr, PCOL: tl.constexpr,
                  LEVELS: tl.constexpr, GEO_PAD: tl.constexpr, RAW_PAD: tl.constexpr, FD: tl.constexpr,
                  ILLU: tl.constexpr, DT: tl.constexpr, BLOCK: tl.constexpr, T_END: tl.constexpr):
    """Step 2. Persistent programs: each lane takes the next ray of the queue ``order`` (rays by
    number of occupied samples, most first, so the empty ones end it) from the counter at
    ``next_ptr``, and takes another as soon as its ray is done: no lane waits for its neighbours'
    longer rays."""
    zero = tl.zeros((BLOCK,), dtype=tl.float32)
    rays = tl.zeros((BLOCK,), dtype=tl.int32)
    ox, oy, oz, dx, dy, dz, tn, step, T = zero, zero, zero, zero, zero, zero, zero, zero, zero
    bits = tl.zeros((BLOCK,), dtype=tl.int64)
    hid = tl.arange(0, HID)
    rcol = tl.arange(0, RAW_PAD)
    accf = tl.zeros((BLOCK, RAW_PAD), dtype=tl.float32)
    alive = rays != 0     # a ray in hand, still marching
    fetch = rays == 0     # wants a ray
    while tl.max((alive | fetch).to(tl.int32), axis=0) > 0:
        slot = tl.atomic_add(next_ptr + rays * 0, 1, mask=fetch)
        got = fetch & (slot < R)
        new = tl.load(order_ptr + slot, mask=got, other=0)
        nbits = tl.load(bits_ptr + new, mask=got, other=0)
        got = got & (nbits != 0)
        rays = tl.where(got, new, rays)
        ox = tl.where(got, tl.load(o_ptr + rays * 3, mask=got, other=0.0), ox)
        oy = tl.where(got, tl.load(o_ptr + rays * 3 + 1, mask=got, other=0.0), oy)
        oz = tl.where(got, tl.load(o_ptr + rays * 3 + 2, mask=got, other=0.0), oz)
        dx = tl.where(got, tl.load(d_ptr + rays * 3, mask=got, other=0.0), dx)
        dy = tl.where(got, tl.load(d_ptr + rays * 3 + 1, mask=got, other=0.0), dy)
        dz = tl.where(got, tl.load(d_ptr + rays * 3 + 2, mask=got, other=0.0), dz)
        tn = tl.where(got, tl.load(tn_ptr + rays, mask=got, other=0.0), tn)
        step = tl.where(got, tl.load(step_ptr + rays, mask=got, other=0.0), step)
        bits = tl.where(got, nbits, bits)
        T = tl.where(got, 1.0, T)
        accf = tl.where(got[:, None], 0.0, accf)
        alive = alive | got
        frame = rays // rays_per_frame
        delta = step / radius                              # spacing in canonical units (model._composite)
        # the ray's next occupied sample
        low = bits & (-bits)
        k = (tl.log2(tl.maximum(low, 1).to(tl.float32)) + 0.5).to(tl.int32)  # the lowest set bit
        bits = bits ^ low
        t = tn + (k.to(tl.float32) + 0.5) * step
        ux = (ox + t * dx - cx) / radius
        uy = (oy + t * dy - cy) / radius
        uz = (oz + t * dz - cz) / radius
        # deformation (field._geometry): x + scale * tanh(MLP(gamma(x), code))
        if DEFORM:
            pc_ = tl.arange(0, PE_PAD)
            j = pc_ - 3
            dim = tl.where(pc_ < 3, pc_, j // (2 * PE_FREQS))
            q = j % (2 * PE_FREQS)
            xs = tl.where(dim[None, :] == 0, ux[:, None], tl.where(dim[None, :] == 1, uy[:, None], uz[:, None]))
            fr = tl.exp2((q % PE_FREQS).to(tl.float32)) * 3.141592653589793
            arg = xs * fr[None, :]
            pe = tl.where(pc_[None, :] < 3, xs,
                          tl.where(q[None, :] < PE_FREQS, tl.sin(arg), tl.cos(arg)))
            pe = tl.where(pc_[None, :] < 3 + 6 * PE_FREQS, pe, 0.0)
            h = tl.dot(pe.to(DT), tl.load(dw1_ptr + pc_[:, None] * HID + hid[None, :]))
            h = _silu(h + tl.load(fbias_ptr + frame[:, None] * 3 * HID + hid[None, :]))
            h = tl.dot(h.to(DT), tl.load(dw2_ptr + hid[:, None] * HID + hid[None, :]))
            h = _silu(h + tl.load(db2_ptr + hid)[None, :])
            c16 = tl.arange(0, 16)
            off = tl.dot(h.to(DT), tl.load(dw3_ptr + hid[:, None] * 16 + c16[None, :]))
            off = off + tl.load(db3_ptr + c16)[None, :]
            # tanh(v) = 2 sigmoid(2v) - 1
            xx = ux + deform_scale * (2.0 / (1.0 + tl.exp(-2.0 * _col(off, c16, 0))) - 1.0)
            xy = uy + deform_scale * (2.0 / (1.0 + tl.exp(-2.0 * _col(off, c16, 1))) - 1.0)
            xz = uz + deform_scale * (2.0 / (1.0 + tl.exp(-2.0 * _col(off, c16, 2))) - 1.0)
        else:
            xx, xy, xz = ux, uy, uz
        # tri-planes (encoding.TriPlaneGrid: grid_sample, bilinear, align_corners, border) into layer 1
        pcs = tl.arange(0, PCOL)
        plane = pcs // PC
        ch = pcs % PC
        pa = tl.where(plane[None, :] == 1, xy[:, None], xx[:, None])          # planes xy, yz, xz
        pb = tl.where(plane[None, :] == 0, xy[:, None], xz[:, None])
        pm = (plane[None, :] < 3) & alive[:, None]
        h = tl.load(fbias_ptr + frame[:, None] * 3 * HID + HID + hid[None, :])
        for lv in tl.static_range(LEVELS):
            r = tl.load(pres_ptr + lv)
            base = tl.load(poff_ptr + lv)
            fx = tl.minimum(tl.maximum((pa + 1.0) * 0.5 * (r - 1), 0.0), (r - 1).to(tl.float32))
            fy = tl.minimum(tl.maximum((pb + 1.0) * 0.5 * (r - 1), 0.0), (r - 1).to(tl.float32))
            x0 = tl.floor(fx)
            y0 = tl.floor(fy)
            wx = fx - x0
            wy = fy - y0
            x0i = x0.to(tl.int32)
            y0i = y0.to(tl.int32)
            x1i = tl.minimum(x0i + 1, r - 1)
            y1i = tl.minimum(y0i + 1, r - 1)
            pl = base + (plane[None, :] * r).to(tl.int64) * r * PC + ch[None, :]
            f00 = tl.load(planes_ptr + pl + (y0i * r + x0i).to(tl.int64) * PC, mask=pm, other=0.0).to(tl.float32)
            f01 = tl.load(planes_ptr + pl + (y0i * r + x1i).to(tl.int64) * PC, mask=pm, other=0.0).to(tl.float32)
            f10 = tl.load(planes_ptr + pl + (y1i * r + x0i).to(tl.int64) * PC, mask=pm, other=0.0).to(tl.float32)
            f11 = tl.load(planes_ptr + pl + (y1i * r + x1i).to(tl.int64) * PC, mask=pm, other=0.0).to(tl.float32)
            feat = (f00 * (1.0 - wx) + f01 * wx) * (1.0 - wy) + (f10 * (1.0 - wx) + f11 * wx) * wy
            w1 = tl.load(gw1_ptr + lv * PCOL * HID + pcs[:, None] * HID + hid[None, :])
            h += tl.dot(feat.to(DT), w1)
        h = _silu(h)
        h = tl.dot(h.to(DT), tl.load(gw2_ptr + hid[:, None] * HID + hid[None, :]))
        h = _silu(h + tl.load(gb2_ptr + hid)[None, :])
        gcol = tl.arange(0, GEO_PAD)
        g = tl.dot(h.to(DT), tl.load(gw3_ptr + hid[:, None] * GEO_PAD + gcol[None, :]))
        g = g + tl.load(gb3_ptr + gcol)[None, :]
        sigma = tl.exp(tl.minimum(_col(g, gcol, 0), 12.0))
        # colour head (no view direction): [geo, code] -> raw
        c = tl.dot(g.to(DT), tl.load(cw1_ptr + gcol[:, None] * HID + hid[None, :]))
        c = _silu(c + tl.load(fbias_ptr + frame[:, None] * 3 * HID + 2 * HID + hid[None, :]))
        raw = tl.dot(c.to(DT), tl.load(cw2_ptr + hid[:, None] * RAW_PAD + rcol[None, :]))
        raw = raw + tl.load(cb2_ptr + rcol)[None, :]
        rgb = 1.0 / (1.0 + tl.exp(-raw))
        if ILLU:
            # Lambertian SH shading (field.forward, face3d.model.sh_basis)
            nx = _col(raw, rcol, FD)
            ny = _col(raw, rcol, FD + 1)
            nz = _col(raw, rcol, FD + 2) + 1.0
            nn = tl.maximum(tl.sqrt(nx * nx + ny * ny + nz * nz), 1e-6)
            nx, ny, nz = nx / nn, ny / nn, nz / nn
            lrow = light_ptr + frame * 27
            for cc in tl.static_range(3):
                sh = (0.282095 * tl.load(lrow + 9 * cc) + 0.488603 * ny * tl.load(lrow + 9 * cc + 1)
                      + 0.488603 * nz * tl.load(lrow + 9 * cc + 2) + 0.488603 * nx * tl.load(lrow + 9 * cc + 3)
                      + 1.092548 * nx * ny * tl.load(lrow + 9 * cc + 4) + 1.092548 * ny * nz * tl.load(lrow + 9 * cc + 5)
                      + 0.315392 * (3.0 * nz * nz - 1.0) * tl.load(lrow + 9 * cc + 6)
                      + 1.092548 * nx * nz * tl.load(lrow + 9 * cc + 7)
                      + 0.546274 * (nx * nx - ny * ny) * tl.load(lrow + 9 * cc + 8))
                rgb = tl.where(rcol[None, :] == cc, rgb * sh[:, None], rgb)
        z = tl.where(rcol[None, :] < 3, rgb, raw)
        z = tl.where(rcol[None, :] < FD, z, 0.0)
        # 3. Eq. (5), one sample per ray per round
        tau = tl.where(alive, sigma * delta, 0.0)
        w = T * (1.0 - tl.exp(-tau))
        accf += tl.where(alive[:, None], w[:, None] * z, 0.0)
        T = T * tl.exp(-tau)
        done = alive & ((bits == 0) | (T <= T_END))
        tl.store(out_ptr + rays[:, None] * FD + rcol[None, :], accf, mask=done[:, None] & (rcol[None, :] < FD))
        tl.store(acc_ptr + rays, 1.0 - T, mask=done)
        alive = alive & ~done
        fetch = done


def march(model, rays_o: Tensor, rays_d: Tensor, codes: Tensor, rays_per_frame: int, block: int = 32,
          num_warps: int = 2, programs_per_sm: int = 8, dtype: torch.dtype = torch.float16) -> tuple[Tensor, Tensor]:
    """Features (R, feat_dim) and opacity (R,) of rays (R, 3) in the canonical frame, rays of frame b
    at [b * rays_per_frame, (b + 1) * rays_per_frame); codes (B, code_dim) per frame (``model.codes``).
    Same result as ``renderer.render_rays(mode="fast")`` up to fp16 weights and the T <= T_MIN stop.

    block: rays in flight per program, up to 32 (at 64 on an H200 with Triton 3.6 the fp16 products
    came out wrong, benchmarks/RESULTS.md); programs_per_sm: persistent programs per multiprocessor.
    """
    why = unsupported(model)
    if why:
        raise ValueError(f"the fused renderer cannot draw this model: {why}; use mode='fast' without fused")
    if not rays_o.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("the fused renderer runs on a CUDA GPU (or under TRITON_INTERPRET=1): use mode='fast' here")
    if block > 32:
        raise ValueError(f"block {block}: at most 32 rays per program")
    p = pack_field(model, codes, dtype)
    R, dev = rays_o.shape[0], rays_o.device
    out = torch.zeros(R, model.field.cfg.feat_dim, device=dev, dtype=torch.float32)
    acc = torch.zeros(R, device=dev, dtype=torch.float32)
    if R == 0:
        return out, acc
    o, d = rays_o.float().contiguous(), rays_d.float().contiguous()
    c, radius = [float(v) for v in model.cfg.center], float(model.cfg.radius)
    bits = torch.empty(R, device=dev, dtype=torch.int64)
    tn, step = torch.empty(R, device=dev), torch.empty(R, device=dev)
    count = torch.empty(R, device=dev, dtype=torch.int32)
    _occupancy_kernel[(triton.cdiv(R, 128),)](
        o, d, model.occupancy.occupied.reshape(-1).view(torch.uint8), bits, tn, step, count,
        R, c[0], c[1], c[2], radius, float(model.cfg.near), float(model.cfg.far),
        S=model.cfg.n_samples, OCC_RES=model.occupancy.res, BLOCK=128, num_warps=4)
    order = torch.argsort(count, descending=True).to(torch.int32)
    queue = torch.zeros(1, device=dev, dtype=torch.int32)
    sms = torch.cuda.get_device_properties(dev).multi_processor_count if dev.type == "cuda" else 1
    _march_kernel[(min(triton.cdiv(R, block), sms * programs_per_sm),)](
        o, d, order, queue, bits, tn, step, out, acc, p["planes"], p["plane_res"], p["plane_off"],
        p["dw1"], p["dw2"], p["db2"], p["dw3"], p["db3"], p["gw1"], p["gw2"], p["gb2"], p["gw3"], p["gb3"],
        p["cw1"], p["cw2"], p["cb2"], p["fbias"], p["light"],
        R, rays_per_frame, c[0], c[1], c[2], radius, p["deform_scale"],
        DT=tl.float16 if dtype == torch.float16 else tl.float32, BLOCK=block, T_END=T_MIN, num_warps=num_warps,
        **p["const"])
    return out, acc
