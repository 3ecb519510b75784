"""``atomtwin compile CKPT OUT.pt2 --target lammps``: the package ``pair_style atomtwin`` loads.

LAMMPS hands a pair style positions of local *and* ghost atoms and a neighbour list; periodic
images are ghost atoms, so no cell enters.  The package therefore takes edge vectors and
returns the gradient of the local energy with respect to them::

    forward(edge_vec (E,3), atom_types (N,), edge_index (2,E), weight (N,))
        -> energy (1,), atom_energy (N,), edge_grad (E,3)

with ``edge_vec[e] = x[edge_index[1,e]] - x[edge_index[0,e]]`` (Å), ``weight`` 1 for atoms
whose energy this rank owns (local atoms) and 0 for ghosts, ``energy = sum_i weight_i e_i``
(eV) and ``edge_grad = d energy / d edge_vec`` (eV/Å).  The plugin turns ``edge_grad`` into
forces (``f_i += g``, ``f_j -= g``), the virial ``W = -sum_e vec_e (x) g_e`` and the per-atom
virial (half of each edge's term to each end), so the per-atom virial that Green-Kubo heat
flux needs comes at no extra cost.

The route is that of :mod:`atomtwin.engines.mlip.compile` (``make_fx`` in symbolic mode,
``torch.export`` with dynamic atom and edge counts, AOTInductor), and the package is checked
against the eager model on unseen sizes before it is kept.  ``torch.export`` specialises
sizes 0 and 1, so the plugin always appends two dummy atoms (weight 0) joined by two edges
longer than the cutoff (exactly zero energy and gradient): every call has >= 2 atoms and
edges, also on an empty rank.

Metadata (flat string keys the C++ side reads without a JSON parser, plus the ``atomtwin``
JSON that :func:`atomtwin.engines.mlip.compiled.read_metadata` reads): format, species,
r_max, dtype, device, torch version, units (``metal``), architecture, num_layers and the
ghost cutoff a rank needs (``num_layers * r_max`` for the NequIP-style model, ``r_max`` for
the Allegro-style one).
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from atomtwin.toolkit.errors import InputError
from torch import Tensor, nn

__all__ = [
    "LammpsEnergy",
    "compile_lammps",
    "LAMMPS_FORMAT",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "lammps_inputs",
    "ghost_cutoff",
    "layer_inputs",
    "pad_dummy",
]

LAMMPS_FORMAT = "atomtwin-lammps-aoti/2"
INPUT_NAMES = ("edge_vec", "atom_types", "edge_index", "weight")
OUTPUT_NAMES = ("energy", "atom_energy", "edge_grad")


class LammpsEnergy(nn.Module):
    """Energy of the weighted atoms and its gradient with respect to the edge vectors.

    Same per-atom energy as :meth:`atomtwin.engines.mlip.model.Potential.atom_energies`
    (which computes the edge vectors from positions and cell shifts; here they are given).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def atom_energies(
        self, vec: Tensor, types: Tensor, edge_index: Tensor, layer_edges: list | None = None
    ) -> Tensor:
        return self.model.energies_from_edges(
            vec, types, edge_index[0], edge_index[1], layer_edges
        )

    def forward(
        self,
        edge_vec: Tensor,
        atom_types: Tensor,
        edge_index: Tensor,
        weight: Tensor,
        *edges_per_layer: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``edges_per_layer``: for a message-passing model, ``num_layers - 1`` tensors whose
        lengths (their values are not read) say how many leading edges layers 2, 3, ... use;
        none: every layer uses every edge."""
        dtype = self.model.shift.dtype
        layer_edges = [t.shape[0] for t in edges_per_layer] if edges_per_layer else None
        with torch.enable_grad():
            vec = edge_vec.to(dtype).detach().requires_grad_(True)
            atom_e = self.atom_energies(vec, atom_types, edge_index, layer_edges)
            energy = (atom_e * weight.to(dtype)).sum().reshape(1)
            (grad,) = torch.autograd.grad(energy.sum(), [vec])
        return energy.detach(), atom_e.detach(), grad


def ghost_cutoff(architecture: str, num_layers: int, r_max: float) -> float:
    """Ghost shell (Å) a rank needs for exact local energies: ``num_layers * r_max`` for
    message passing (NequIP-style: a feature after k layers depends on atoms k * r_max away),
    ``r_max`` for strictly local models (Allegro-style)."""
    return float(num_layers * r_max if architecture == "nequip" else r_max)


def lammps_inputs(
    model: nn.Module, n_atoms: int, seed: int = 0, n_ghost: int = 0, device: str = "cpu"
) -> tuple[Tensor, ...]:
    """Package inputs for a random periodic structure: edge vectors from the minimum-image
    neighbour list, the last ``n_ghost`` atoms weighted 0, and the two dummy atoms and edges
    the plugin appends (tracing and self-check example)."""
    from atomtwin.engines.mlip.compile import example_graph

    b = example_graph(model, n_atoms, seed=seed, device=device)
    dtype = model.shift.dtype
    pos, cell = b["pos"].to(dtype), b["cell"].to(dtype).reshape(3, 3)
    ei = b["edge_index"]
    vec = pos[ei[1]] - pos[ei[0]] + b["edge_cell_shift"].to(dtype) @ cell
    n = pos.shape[0]
    weight = torch.ones(n, dtype=dtype, device=device)
    cls = torch.zeros(ei.shape[1], dtype=torch.long, device=device)
    if n_ghost:
        weight[n - n_ghost :] = 0
        # ghost centres one shell out: the last layer skips their edges
        cls = (ei[0] >= n - n_ghost).long()
    cfg = model.config
    extra = layer_inputs(cfg.architecture, cfg.num_layers)
    return pad_dummy(vec, b["atom_types"], ei, weight, model.r_max, extra, cls)


def layer_inputs(architecture: str, num_layers: int) -> int:
    """How many ``edges_per_layer`` inputs a LAMMPS package takes: ``num_layers - 1`` for
    message passing (NequIP-style), 0 for strictly local models."""
    return int(num_layers) - 1 if architecture == "nequip" else 0


def pad_dummy(
    vec: Tensor,
    types: Tensor,
    ei: Tensor,
    weight: Tensor,
    r_max: float,
    extra_layers: int = 0,
    edge_class: Tensor | None = None,
) -> tuple[Tensor, ...]:
    """The package's inputs as the plugin builds them.

    Two weight-0 atoms joined by two edges of length 2 r_max are appended (their energy and
    gradient contributions are exactly 0; every call then has >= 2 atoms and edges).  Edges
    are ordered by ``edge_class`` (default 0 for all: the centre is a local atom; class ``c``:
    the centre is ``c`` hops, along edges ``r < r_max``, from the rank's own atoms), the dummy edges right
    after class 0, and for a message-passing model ``extra_layers`` (= num_layers - 1)
    length-carrying tensors follow: layer ``k`` (2..L) uses the edges of class <= L - k."""
    n = types.shape[0]
    far = torch.tensor([[2 * r_max, 0, 0], [-2 * r_max, 0, 0]], dtype=vec.dtype, device=vec.device)
    dummy = torch.tensor([[n, n + 1], [n + 1, n]], dtype=ei.dtype, device=ei.device)
    if edge_class is None:
        edge_class = torch.zeros(vec.shape[0], dtype=torch.long, device=vec.device)
    order = torch.argsort(edge_class, stable=True)
    cls = edge_class[order]
    n0 = int((cls == 0).sum())
    vec, ei = vec[order], ei[:, order]
    out = (
        torch.cat([vec[:n0], far, vec[n0:]]),
        torch.cat([types, types.new_zeros(2)]),
        torch.cat([ei[:, :n0], dummy, ei[:, n0:]], dim=1),
        torch.cat([weight, weight.new_zeros(2)]),
    )
    L = extra_layers + 1
    carriers = tuple(
        torch.zeros(int((cls <= L - k).sum()) + 2, dtype=torch.uint8, device=vec.device)
        for k in range(2, L + 1)
    )
    return out + carriers


def _export(wrapper: nn.Module, example: tuple[Tensor, ...]):
    from atomtwin.engines.mlip import torch_internals as TI
    from torch.export import Dim

    gm = TI.make_fx(wrapper, tracing_mode="symbolic", allow_non_fake_inputs=True)(*example)
    n, e = Dim("n_atoms", min=2), Dim("n_edges", min=2)
    shapes = ({0: e}, {0: n}, {1: e}, {0: n}) + tuple(
        {0: Dim(f"n_edges_layer{k + 2}", min=2)} for k in range(len(example) - 4)
    )
    return torch.export.export(gm, example, dynamic_shapes=shapes, strict=False)


def compile_lammps(
    model: nn.Module | str | Path,
    out: str | Path,
    device: str = "cpu",
    kernel: bool = False,
    check_sizes: tuple[int, ...] = (7, 29),
    verbose: bool = False,
) -> dict[str, Any]:
    """Export ``model`` (a Potential or a checkpoint path) to a package for ``pair_style atomtwin``.

    Parameters
    ----------
    model
        A :class:`~atomtwin.engines.mlip.model.Potential` or a checkpoint / model file.
    out
        The ``.pt2`` file to write (atomically: a temporary name, then renamed).
    device
        ``"cpu"`` or ``"cuda"``: the device type LAMMPS will run the package on.
    kernel
        Route the Allegro contraction through the sparse tensor-product op
        (``atomtwin::tp_sparse``), compiled into the package: its Triton kernel on CUDA, its
        torch implementation on CPU (a warning says so).  The package then runs in LAMMPS with
        no Python.  NequIP-style models have no such contraction (a warning, no change).
    check_sizes
        Atom counts of the self-check structures (the last third of each weighted 0, as
        ghosts), besides the tiny padded case.

    Returns
    -------
    dict: the metadata plus ``path``, ``compile_time_s`` and ``self_check`` (max relative errors).

    Raises
    ------
    InputError
        Unknown device, or CUDA asked for on a machine without it.
    RuntimeError
        The self-check failed (nothing is written).
    """
    from atomtwin.engines.mlip import torch_internals as TI
    from atomtwin.engines.mlip.compile import model_hash
    from atomtwin.engines.mlip.model import load_model

    import atomtwin

    if device not in ("cpu", "cuda"):
        raise InputError(
            f"device must be 'cpu' or 'cuda', got '{device}'. Fix: --device cpu or --device cuda."
        )
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "--device cuda was asked for but this machine has no CUDA device. Fix: "
            "compile on the GPU machine that will run LAMMPS, or use --device cpu."
        )
    if isinstance(model, (str, Path)):
        model = load_model(model, device=device)
    model = copy.deepcopy(model).to(device).eval()
    use_k = False
    if kernel:
        from atomtwin.engines.mlip.kernels import use_kernel

        if device != "cuda":
            warnings.warn(
                "--kernel on CPU: the package embeds the sparse tensor-product op's plain-torch "
                "CPU implementation (the Triton kernel needs CUDA); same numbers as the reference.",
                stacklevel=2,
            )
        use_k = use_kernel(model, allow_cpu=True)
    for p in model.parameters():
        p.requires_grad_(False)
    dtype = model.shift.dtype
    cfg = model.config
    wrapper = LammpsEnergy(model).eval()
    ghost = ghost_cutoff(cfg.architecture, cfg.num_layers, model.r_max)
    meta = {
        "format": LAMMPS_FORMAT,
        "atomtwin_version": atomtwin.engines.__version__,
        "torch_version": torch.__version__,
        "device": device,
        "kernel": use_k,
        "kernel_impl": ("triton" if device == "cuda" else "torch-cpu") if use_k else None,
        "species": list(model.species),
        "r_max": float(model.r_max),
        "dtype": str(dtype).removeprefix("torch."),
        "architecture": cfg.architecture,
        "num_layers": int(cfg.num_layers),
        "ghost_cutoff": ghost,
        "lammps_units": "metal",
        "model_hash": model_hash(model),
        "model_config": cfg.to_dict(),
        "units": {
            "energy": "eV",
            "atom_energy": "eV",
            "edge_grad": "eV/Angstrom",
            "edge_vec": "Angstrom",
        },
        "inputs": list(INPUT_NAMES)
        + [f"edges_layer{k}" for k in range(2, 2 + layer_inputs(cfg.architecture, cfg.num_layers))],
        "outputs": list(OUTPUT_NAMES),
    }
    flat = {
        "atomtwin": json.dumps(meta),
        "atomtwin.format": LAMMPS_FORMAT,
        "atomtwin.species": " ".join(model.species),
        "atomtwin.r_max": repr(float(model.r_max)),
        "atomtwin.dtype": meta["dtype"],
        "atomtwin.device": device,
        "atomtwin.torch_version": torch.__version__,
        "atomtwin.units": "metal",
        "atomtwin.architecture": cfg.architecture,
        "atomtwin.num_layers": str(int(cfg.num_layers)),
        "atomtwin.ghost_cutoff": repr(ghost),
        "atomtwin.model_hash": meta["model_hash"],
        "atomtwin.kernel": meta["kernel_impl"] or "none",
        "atomtwin.layer_inputs": str(layer_inputs(cfg.architecture, cfg.num_layers)),
    }
    example = lammps_inputs(model, 12, seed=1, n_ghost=3, device=device)
    t0 = time.perf_counter()
    ep = _export(wrapper, example)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.pt2")
    TI.aoti_compile_and_package(
        ep, package_path=str(tmp), inductor_configs={"aot_inductor.metadata": flat}
    )
    compile_time = time.perf_counter() - t0
    try:
        errors = self_check(tmp, wrapper, check_sizes, device)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    if verbose:
        print(f"compiled {out} for LAMMPS in {compile_time:.1f} s; self-check {errors}")
    return {**meta, "path": str(out), "compile_time_s": compile_time, "self_check": errors}


def self_check(
    path: str | Path, wrapper: LammpsEnergy, sizes: tuple[int, ...], device: str = "cpu"
) -> dict[str, float]:
    """Relative max errors of the package against the eager wrapper on unseen sizes and on
    the smallest call (two dummy atoms only: an empty rank).

    Tolerance as in :mod:`atomtwin.engines.mlip.compile`: fused kernels reassociate sums, so
    the package agrees to a few hundred ulp: 1e-8 (float64), 2e-4 (float32) relative to the
    largest magnitude of each output.
    """
    from atomtwin.engines.mlip import torch_internals as TI

    model = wrapper.model
    tol = 1e-8 if model.shift.dtype == torch.float64 else 2e-4
    runner = TI.aoti_load_package(str(path), device_index=-1)
    empty = pad_dummy(
        torch.zeros(0, 3, dtype=model.shift.dtype, device=device),
        torch.zeros(0, dtype=torch.long, device=device),
        torch.zeros(2, 0, dtype=torch.long, device=device),
        torch.zeros(0, dtype=model.shift.dtype, device=device),
        model.r_max,
        layer_inputs(model.config.architecture, model.config.num_layers),
    )
    cases = [
        lammps_inputs(model, n, seed=100 + k, n_ghost=n // 3, device=device)
        for k, n in enumerate(sizes)
    ] + [empty]
    worst: dict[str, float] = {}
    for inputs in cases:
        got = runner(*inputs)
        ref = wrapper(*inputs)
        for name, g, r in zip(OUTPUT_NAMES, got, ref, strict=True):
            scale = float(r.abs().max()) + 1e-12
            err = float((g - r).abs().max()) / scale
            if name == "edge_grad":  # the dummy edges (centred on the 2 dummy atoms) give 0
                dummy = inputs[2][0] >= inputs[1].shape[0] - 2
                err = max(err, float(g[dummy].abs().max()))
            worst[name] = max(worst.get(name, 0.0), err)
            if not err <= tol:
                raise RuntimeError(
                    f"self-check failed: the LAMMPS package's '{name}' differs from the eager "
                    f"model by {err:.2e} (relative) on {inputs[1].shape[0]} atoms, tolerance "
                    f"{tol:.0e}. Nothing was written. Fix: report this with the checkpoint."
                )
    return worst


def edge_reference(
    model: nn.Module, positions: np.ndarray, cell: np.ndarray, types: np.ndarray
) -> dict[str, np.ndarray]:
    """Eager reference of what the plugin tallies for one periodic cell: energy (eV), per-atom
    energy (N,) eV, forces (N,3) eV/Å, virial (3,3) eV and per-atom virial (N,6) eV in LAMMPS'
    order xx, yy, zz, xy, xz, yz (half of ``W_e = -vec (x) g`` of each edge to each end; per
    atom the tensor is not symmetric, and LAMMPS keeps ``W[0,1]``, ``W[0,2]``, ``W[1,2]``),
    from the minimum-image neighbour list."""
    from atomtwin.engines.mlip.neighbors import neighbor_list

    dtype = model.shift.dtype
    pos = torch.as_tensor(positions, dtype=torch.float64)
    c = torch.as_tensor(cell, dtype=torch.float64)
    ei, shift = neighbor_list(pos, c, torch.ones(3, dtype=torch.bool), model.r_max)
    vec = (pos[ei[1]] - pos[ei[0]] + shift.to(torch.float64) @ c).to(dtype)
    n = len(types)
    t = torch.as_tensor(types, dtype=torch.long)
    energy, atom_e, g = LammpsEnergy(model)(vec, t, ei, torch.ones(n, dtype=dtype))
    g64, v64 = g.double(), vec.double()
    forces = torch.zeros(n, 3, dtype=torch.float64)
    forces.index_add_(0, ei[0], g64).index_add_(0, ei[1], -g64)
    w_edge = -v64[:, :, None] * g64[:, None, :]
    w_atom = torch.zeros(n, 3, 3, dtype=torch.float64)
    w_atom.index_add_(0, ei[0], 0.5 * w_edge).index_add_(0, ei[1], 0.5 * w_edge)
    return {
        "energy": float(energy),
        "atom_energy": atom_e.double().numpy(),
        "forces": forces.numpy(),
        "virial": w_edge.sum(0).numpy(),
        "atom_virial": w_atom[:, [0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]].numpy(),
    }
