"""The former torch cell list of ``atomtwin.engines.mlip.neighbors`` (before the shared
vesin layer), kept only as the baseline that ``bench_neighbors.py`` measures against.
Any triclinic cell, cells smaller than the cutoff, O(N) through cell lists.

Convention (the model contract): an edge ``(i, j)`` with integer image shift ``S`` means

    r_ij = pos[j] - pos[i] + S @ cell

where ``cell`` holds the lattice vectors as rows.  Pairs ``0 < |r_ij| < r_max`` are listed
in both directions; an atom is its own neighbour only through a non-zero image shift,
exactly as :func:`ase.neighborlist.neighbor_list`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["neighbor_list"]


def _complete_cell(cell: Tensor, pbc: Tensor) -> Tensor:
    """Replace (near-)zero lattice vectors of non-periodic directions so the cell inverts.

    The substitutes are orthogonal to the remaining vectors; only the periodic directions'
    fractional coordinates are ever used, so the choice does not change the result.
    """
    cell = cell.clone()
    norms = cell.norm(dim=1)
    scale = float(norms.max()) if float(norms.max()) > 0 else 1.0
    bad = [k for k in range(3) if (not bool(pbc[k])) and float(norms[k]) < 1e-8 * scale]
    for k in range(3):
        if bool(pbc[k]) and float(norms[k]) < 1e-12:
            raise ValueError(
                f"cell vector {k} is zero but pbc[{k}] is True. Fix: give a cell with three "
                "non-zero lattice vectors for periodic directions, or set pbc to False there."
            )
    if not bad:
        return cell
    good = [k for k in range(3) if k not in bad]
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device)
    if len(good) == 2:
        v = torch.linalg.cross(cell[good[0]], cell[good[1]])
        cell[bad[0]] = v / v.norm()
    elif len(good) == 1:
        a = cell[good[0]] / cell[good[0]].norm()
        trial = eye[int(torch.argmin(a.abs()))]
        b = trial - (trial @ a) * a
        b = b / b.norm()
        cell[bad[0]] = b
        cell[bad[1]] = torch.linalg.cross(a, b)
    else:
        cell = eye.clone()
    if abs(float(torch.linalg.det(cell))) < 1e-12:
        raise ValueError(
            "the cell is singular (its lattice vectors are linearly dependent). "
            "Fix: give three independent lattice vectors."
        )
    return cell


def neighbor_list(
    pos: Tensor, cell: Tensor | None, pbc: Tensor | tuple[bool, bool, bool] | None, r_max: float
) -> tuple[Tensor, Tensor]:
    """All ordered pairs closer than ``r_max`` in one structure.

    Parameters
    ----------
    pos
        (N, 3) Cartesian positions, Å (need not be wrapped into the cell).
    cell
        (3, 3) lattice vectors as rows, Å; ``None`` for an isolated structure.
    pbc
        (3,) periodicity per lattice vector; ``None`` means no periodicity.
    r_max
        Cutoff radius, Å; pairs with ``0 < |r_ij| < r_max`` are returned.

    Returns
    -------
    edge_index
        (2, E) long, ``edge_index[0]`` the centre ``i``, ``edge_index[1]`` the neighbour ``j``.
    edge_cell_shift
        (E, 3) integer image shifts (in ``pos.dtype``) with
        ``r_ij = pos[j] - pos[i] + edge_cell_shift @ cell``.

    Notes
    -----
    Image atoms are generated only in a halo of width ``r_max`` around the cell (as many
    images as needed when the cell is thinner than the cutoff) and binned on a Cartesian
    grid of spacing ``>= r_max``; the cost is linear in the number of atoms.
    """
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"pos must have shape (N, 3), got {tuple(pos.shape)}.")
    if not r_max > 0:
        raise ValueError(f"r_max must be positive, got {r_max}.")
    device, dtype = pos.device, pos.dtype
    n = pos.shape[0]
    if pbc is None:
        pbc_t = torch.zeros(3, dtype=torch.bool)
    else:
        pbc_t = torch.as_tensor(pbc, dtype=torch.bool).reshape(3).cpu()
    if cell is None:
        cell = torch.zeros(3, 3, dtype=dtype, device=device)
    cell = torch.as_tensor(cell, dtype=dtype, device=device).reshape(3, 3)
    empty = (torch.zeros(2, 0, dtype=torch.long, device=device), torch.zeros(0, 3, dtype=dtype, device=device))
    if n == 0:
        return empty
    # work in float64 for exact agreement of the r < r_max decision with ASE
    p64 = pos.detach().to(torch.float64)
    c64 = _complete_cell(cell.detach().to(torch.float64), pbc_t)
    inv = torch.linalg.inv(c64)
    per = pbc_t.to(device)
    frac = p64 @ inv
    wrap = torch.where(per, torch.floor(frac), torch.zeros_like(frac))
    frac_w = frac - wrap
    pw = frac_w @ c64  # wrapped positions (unchanged along non-periodic directions)

    # number of images per direction: plane spacing d_k = 1/|b_k|
    recip_norm = inv.norm(dim=0)  # |b_k|, columns of inv are reciprocal vectors
    nimg = [int(math.ceil(r_max * float(recip_norm[k]))) if bool(pbc_t[k]) else 0 for k in range(3)]
    ranges = [torch.arange(-m, m + 1, device=device, dtype=torch.float64) for m in nimg]
    shifts = torch.cartesian_prod(*ranges).reshape(-1, 3)  # (S, 3)
    # halo filter: image point's fractional coordinate within r_max/d_k of [0, 1)
    slack = (r_max * recip_norm).to(device)
    g = frac_w[None, :, :] + shifts[:, None, :]  # (S, N, 3)
    ok = ((g >= -slack) & (g < 1.0 + slack)) | ~per
    keep = ok.all(dim=-1)
    s_idx, a_idx = keep.nonzero(as_tuple=True)
    img_shift = shifts[s_idx]  # (M, 3)
    img_pos = pw[a_idx] + img_shift @ c64  # (M, 3)

    # cell list over the bounding box of all points
    lo = torch.minimum(img_pos.min(0).values, pw.min(0).values)
    hi = torch.maximum(img_pos.max(0).values, pw.max(0).values)
    extent = (hi - lo).clamp_min(1e-9)
    nb = torch.clamp(torch.floor(extent / r_max), min=1).long()
    # cap the number of bins (sparse systems) at ~ the number of points
    while int(nb.prod()) > max(8, 2 * img_pos.shape[0]):
        nb = torch.clamp(nb // 2, min=1)
    bsize = extent / nb
    def bin3(x: Tensor) -> Tensor:
        b = torch.floor((x - lo) / bsize).long()
        return torch.minimum(torch.clamp(b, min=0), nb - 1)

    ib = bin3(img_pos)
    lin = (ib[:, 0] * nb[1] + ib[:, 1]) * nb[2] + ib[:, 2]
    order = torch.argsort(lin, stable=True)
    lin_sorted = lin[order]
    nbins = int(nb.prod())
    counts = torch.bincount(lin_sorted, minlength=nbins)
    starts = torch.cumsum(counts, 0) - counts

    cb = bin3(pw)  # (N, 3) bins of centres
    off = torch.cartesian_prod(*[torch.arange(-1, 2, device=device)] * 3)  # (27, 3)
    nbr = cb[:, None, :] + off[None, :, :]  # (N, 27, 3)
    valid = ((nbr >= 0) & (nbr < nb)).all(-1)
    # the same bin can appear twice when nb == 1 or 2 along an axis: deduplicate
    nlin = (nbr[..., 0] * nb[1] + nbr[..., 1]) * nb[2] + nbr[..., 2]
    nlin = torch.where(valid, nlin, torch.full_like(nlin, -1))
    nlin, _ = torch.sort(nlin, dim=1)
    dup = torch.zeros_like(valid)
    dup[:, 1:] = nlin[:, 1:] == nlin[:, :-1]
    use = (nlin >= 0) & ~dup
    ci, kk = use.nonzero(as_tuple=True)
    bins = nlin[ci, kk]
    cnt = counts[bins]
    total = int(cnt.sum())
    if total == 0:
        return empty
    centre = torch.repeat_interleave(ci, cnt)
    first = torch.repeat_interleave(starts[bins], cnt)
    run_start = torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
    cand = order[first + torch.arange(total, device=device) - run_start]

    vec = img_pos[cand] - pw[centre]
    d2 = (vec * vec).sum(-1)
    j_atom = a_idx[cand]
    s = img_shift[cand]
    self_pair = (j_atom == centre) & (s == 0).all(-1)
    # distance decided in float64 from the original (unwrapped) coordinates, as ASE does
    mask = (d2 < r_max * r_max) & ~self_pair
    i_e, j_e, s_e = centre[mask], j_atom[mask], s[mask]
    shift = s_e - wrap[j_e] + wrap[i_e]
    shift = torch.round(shift)
    edge_index = torch.stack([i_e, j_e]).to(device)
    # stable order: by centre, then neighbour
    key = i_e * n + j_e
    o = torch.argsort(key, stable=True)
    return edge_index[:, o], shift[o].to(dtype)
