"""``atomtwin compile``: export a trained potential to an AOTInductor package (``.pt2``).

The package computes energy, per-atom energy, forces, stress and virial (the contract of
:mod:`atomtwin.engines.mlip`) for any number of atoms, edges and structures, and carries its
metadata (species, cutoff, units, dtype, model hash, atomtwin/torch versions, device type,
kernel).  Route: the energy-and-gradients function is traced with ``make_fx`` in symbolic
mode (``torch.export`` cannot trace ``torch.autograd.grad`` itself), the traced graph is
exported with dynamic atom/edge/structure dimensions and compiled by AOTInductor.  Before
the file is kept it is loaded back and compared with the eager model on structures of
sizes it was not traced with (the *self-check*).  Load it with
:func:`atomtwin.engines.mlip.compiled.load_compiled` (no training code needed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from atomtwin.engines.mlip import torch_internals as TI
from atomtwin.toolkit.errors import InputError
from torch import Tensor, nn

__all__ = ["compile_model", "EnergyAndGradients", "model_hash", "example_graph",
           "PACKAGE_FORMAT", "INPUT_NAMES", "OUTPUT_NAMES"]

PACKAGE_FORMAT = "atomtwin-mlip-aoti/1"
INPUT_NAMES = ("pos", "atom_types", "cell", "batch", "edge_index", "edge_cell_shift")
OUTPUT_NAMES = ("energy", "atom_energy", "forces", "stress", "virial")


class EnergyAndGradients(nn.Module):
    """Flat-tensor forward of a :class:`~atomtwin.engines.mlip.model.Potential` for export.

    Same physics as ``Potential.forward`` (forces ``-dE/dpos``, stress ``(1/V) dE/dε``
    through a symmetric strain), written without its data-dependent input checks, which
    :class:`atomtwin.engines.mlip.compiled.CompiledPotential` does in Python before each call.

    ``forward(pos (N,3), atom_types (N,), cell (B,3,3), batch (N,), edge_index (2,E),
    edge_cell_shift (E,3))`` returns ``(energy (B,), atom_energy (N,), forces (N,3),
    stress (B,3,3), virial (B,3,3))`` in eV, eV, eV/Å, eV/Å³, eV.
    """

    def __init__(self, model: nn.Module, create_graph: bool = False) -> None:
        super().__init__()
        self.model = model
        self.create_graph = create_graph  # keep the graph of the forces (force training)

    def forward(self, pos: Tensor, atom_types: Tensor, cell: Tensor, batch: Tensor,
                edge_index: Tensor, edge_cell_shift: Tensor, strain: Tensor | None = None) -> tuple[Tensor, ...]:
        """``strain``: optional (B,3,3) zero leaf requiring grad; with it, ``pos`` is used as
        given (a leaf requiring grad): both made outside a compiled region (dynamo cannot
        create leaves that require grad inside one)."""
        dtype = self.model.shift.dtype
        pos = pos.to(dtype)
        cell = cell.to(dtype)
        nb = cell.shape[0]
        data = {"atom_types": atom_types, "batch": batch, "edge_index": edge_index,
                "edge_cell_shift": edge_cell_shift}
        with torch.enable_grad():
            if strain is None:
                pos = pos.detach().requires_grad_(True)
                strain = torch.zeros(nb, 3, 3, dtype=dtype, device=pos.device, requires_grad=True)
            sym = 0.5 * (strain + strain.transpose(1, 2))
            pos_s = pos + torch.einsum("nx,nxy->ny", pos, sym[batch])
            cell_s = cell + torch.bmm(cell, sym)
            atom_e = self.model.atom_energies(pos_s, cell_s, data)
            energy = torch.zeros(nb, dtype=dtype, device=pos.device).index_add(0, batch, atom_e)
            dpos, dstrain = torch.autograd.grad(energy.sum(), [pos, strain], create_graph=self.create_graph)
        # |det| by the triple product (no LAPACK call: AOTInductor has no C shim for det)
        vol = torch.linalg.cross(cell[:, 0], cell[:, 1], dim=-1).mul(cell[:, 2]).sum(-1).abs()
        has_vol = vol > 1e-12
        stress = torch.where(has_vol[:, None, None], dstrain / torch.where(has_vol, vol, 1.0)[:, None, None],
                             torch.zeros_like(dstrain))
        if not self.create_graph:
            energy, atom_e = energy.detach(), atom_e.detach()
        return energy, atom_e, -dpos, stress, -dstrain


def model_hash(model: nn.Module) -> str:
    """SHA-256 of the config and every parameter/buffer (names, dtypes, values)."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def example_graph(model: nn.Module, n_atoms: int, seed: int = 0, n_struct: int = 1,
                  device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Random periodic structures (density ~ 1 atom per 12 Å³, minimum distance ~1.6 Å by
    rejection) of the model's species, as a collated batch: inputs for tracing and checks."""
    from atomtwin.engines.mlip.data import collate

    rng = np.random.default_rng(seed)
    graphs = []
    for s in range(n_struct):
        n = n_atoms + s
        box = (12.0 * n) ** (1.0 / 3.0)
        pos: list[np.ndarray] = []
        while len(pos) < n:
            p = rng.uniform(0, box, 3)
            d = np.array(pos) - p if pos else np.zeros((0, 3))
            d -= box * np.round(d / box)
            if not len(d) or np.min(np.linalg.norm(d, axis=1)) > 1.6:
                pos.append(p)
        numbers = _numbers(model.species, rng, n)
        graphs.append({"numbers": numbers, "pos": np.array(pos), "cell": np.eye(3) * box,
                       "pbc": np.array([True, True, True])})
    b = collate(graphs, r_max=model.r_max, species=model.species)
    return {k: v.to(device) for k, v in b.items()}


def _numbers(species, rng: np.random.Generator, n: int) -> np.ndarray:
    from ase.data import atomic_numbers

    z = np.array([atomic_numbers[s] for s in species])
    return z[rng.integers(0, len(z), n)]


def _inputs(b: dict[str, Tensor], dtype: torch.dtype) -> tuple[Tensor, ...]:
    return (b["pos"].to(dtype), b["atom_types"], b["cell"].to(dtype).reshape(-1, 3, 3), b["batch"],
            b["edge_index"], b["edge_cell_shift"].to(dtype))


def _export(wrapper: nn.Module, example: tuple[Tensor, ...]):
    from torch.export import Dim

    gm = TI.make_fx(wrapper, tracing_mode="symbolic", allow_non_fake_inputs=True)(*example)
    n, e, b = Dim("n_atoms", min=2), Dim("n_edges", min=2), Dim("n_structures", min=1)
    shapes = ({0: n}, {0: n}, {0: b}, {0: n}, {1: e}, {0: e})
    return torch.export.export(gm, example, dynamic_shapes=shapes, strict=False)


def compile_model(
    model: nn.Module | str | Path, out: str | Path, device: str = "cpu", kernel: bool = False,
    check_sizes: tuple[int, ...] = (5, 23), trace_atoms: int = 12, verbose: bool = False,
) -> dict[str, Any]:
    """Export ``model`` (a Potential or a checkpoint path) to an AOTInductor package.

    Parameters
    ----------
    model
        A :class:`~atomtwin.engines.mlip.model.Potential` or the path of a training checkpoint.
    out
        The ``.pt2`` file to write.
    device
        ``"cpu"`` or ``"cuda"``; the package runs only on this device type.
    kernel
        Use the sparse tensor-product op ``atomtwin::tp_sparse`` (Allegro only; a NequIP
        model keeps the reference, ``kernel: false`` in the metadata).  AOTInductor compiles
        the op into the package: its Triton kernel on CUDA, its plain-torch implementation
        on CPU (with a warning); either way the package loads without importing
        :mod:`atomtwin.engines.mlip.kernels`.
    check_sizes
        Atom counts of the self-check structures (other than ``trace_atoms``).
    trace_atoms
        Atoms of the tracing example (two structures, ``trace_atoms`` and ``trace_atoms+1``).

    Returns
    -------
    dict: the metadata plus ``path``, ``compile_time_s`` and ``self_check`` (max errors).

    Raises
    ------
    InputError (a ValueError)
        Unknown device, CUDA asked for but unavailable.
    RuntimeError
        The self-check failed (the file is removed).
    """
    import copy

    from atomtwin.engines.mlip.model import load_model

    import atomtwin

    if device not in ("cpu", "cuda"):
        raise InputError(f"device must be 'cpu' or 'cuda', got '{device}'. Fix: --device cpu or "
                         "--device cuda.")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but this machine has no CUDA device. "
                         "Fix: compile on the GPU machine that will run it, or use --device cpu.")
    if isinstance(model, (str, Path)):
        model = load_model(model, device=device)
    model = copy.deepcopy(model).to(device).eval()
    out = Path(out)
    use_k = False
    if kernel:
        from atomtwin.engines.mlip.kernels import use_kernel

        if device != "cuda":
            warnings.warn("--kernel on CPU: the package embeds the sparse tensor-product op's "
                          "plain-torch CPU implementation (the Triton kernel needs CUDA); same "
                          "numbers as the reference.", stacklevel=2)
        use_k = use_kernel(model, allow_cpu=True)
    dtype = model.shift.dtype
    for p in model.parameters():
        p.requires_grad_(False)
    wrapper = EnergyAndGradients(model).eval()
    example = _inputs(example_graph(model, trace_atoms, seed=1, n_struct=2, device=device), dtype)
    meta = {
        "format": PACKAGE_FORMAT, "atomtwin_version": atomtwin.engines.__version__,
        "torch_version": torch.__version__, "device": device, "kernel": use_k,
        "kernel_impl": ("triton" if device == "cuda" else "torch-cpu") if use_k else None,
        "species": list(model.species), "r_max": float(model.r_max), "dtype": str(dtype).removeprefix("torch."),
        "architecture": model.config.architecture, "model_hash": model_hash(model),
        "model_config": model.config.to_dict(),
        "units": {"energy": "eV", "atom_energy": "eV", "forces": "eV/Angstrom",
                  "stress": "eV/Angstrom^3", "virial": "eV", "pos": "Angstrom", "cell": "Angstrom"},
        "inputs": list(INPUT_NAMES), "outputs": list(OUTPUT_NAMES),
    }
    t0 = time.perf_counter()
    ep = _export(wrapper, example)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.pt2")
    configs = {"aot_inductor.metadata": {"atomtwin": json.dumps(meta)}}
    if use_k and device == "cpu":
        # torch 2.13's C++ codegen asserts on the vectorised atomic scatter of the sparse
        # op's float64 CPU implementation when inductor parallelises (more than one thread);
        # scalar C++ loops for this build avoid it (the CPU kernel path is the portable one,
        # not the fast one)
        configs["cpp.simdlen"] = 1
    TI.aoti_compile_and_package(ep, package_path=str(tmp), inductor_configs=configs)
    compile_time = time.perf_counter() - t0
    try:
        errors = _self_check(tmp, model, wrapper, check_sizes, device, dtype)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    if verbose:
        print(f"compiled {out} in {compile_time:.1f} s; self-check {errors}")
    return {**meta, "path": str(out), "compile_time_s": compile_time, "self_check": errors}


def _self_check(path: Path, model: nn.Module, wrapper: nn.Module, sizes, device: str,
                dtype: torch.dtype) -> dict[str, float]:
    """Relative max errors of the package vs the eager model on unseen sizes.

    Tolerance: the package runs the same operations with fused kernels (reassociated
    sums), so it agrees to a few hundred ulp of the summed quantities: 1e-8 (float64) or
    2e-4 (float32) relative to the largest magnitude of each output.
    """
    from atomtwin.engines.mlip.compiled import load_compiled

    tol = 1e-8 if dtype == torch.float64 else 2e-4
    pkg = load_compiled(path, device=device)
    worst: dict[str, float] = {}
    for k, n in enumerate(sizes):
        b = example_graph(model, n, seed=100 + k, device=device)
        got = pkg(b)
        ref = dict(zip(OUTPUT_NAMES, wrapper(*_inputs(b, dtype)), strict=True))
        for name in OUTPUT_NAMES:
            scale = float(ref[name].abs().max()) + 1e-12
            err = float((got[name] - ref[name]).abs().max()) / scale
            worst[name] = max(worst.get(name, 0.0), err)
            if not err <= tol:
                raise RuntimeError(
                    f"self-check failed: compiled '{name}' differs from the eager model by "
                    f"{err:.2e} (relative) on {n} atoms, tolerance {tol:.0e}. The package was not "
                    "written. Fix: report this with the checkpoint; use the eager model meanwhile.")
    return worst


def _run(args: argparse.Namespace) -> int:
    from atomtwin.toolkit.cli import emit_json

    res = compile_model(args.checkpoint, args.out, device=args.device, kernel=args.kernel)
    if args.json:
        emit_json({k: v for k, v in res.items() if k != "model_config"})
    else:
        print(f"wrote {res['path']} ({res['architecture']}, {res['dtype']}, {res['device']}, "
              f"kernel={res['kernel']}) in {res['compile_time_s']:.1f} s; self-check max relative "
              f"error {max(res['self_check'].values()):.1e}")
    return 0


# the ``atomtwin compile`` parser lives in atomtwin.engines.mlip.cli (register_compile), so the CLI
# can list the command without importing torch; it calls _run below


