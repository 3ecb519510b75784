"""THE builder of our models and their nequip / nequip-allegro peers for every benchmark and
test that compares the two (``bench_mlip.py``, ``bench_mlip_accuracy.py``,
``bench_inference.py``, ``tests/gpu/device_check.py``, the peer tests).

A *pair* is built from one :class:`Hyper` (lmax, parity, layers, channels, Bessel basis,
MLP widths, r_max) and one of two matchings:

``"params"`` (the default: capacity-matched)
    The architectures differ where neither side has a switch (listed in :data:`UNMATCHED`);
    one free knob is then set so that the parameter counts agree within 5 %:

    * NequIP: the peer's type-embedding width (``type_embed_num_features``), which conditions
      its self-connection (ours: one weight matrix per species).  The peer's default of 32
      makes its self-connection 32x ours for one species;
    * Allegro: our MLP hidden width (``mlp_hidden``), because the peer's readout reads the
      latents of every layer concatenated (3 x latent inputs for 2 layers; ours the last
      latent) and its later latent MLPs read all earlier latents, so at the same widths the
      peer has 1.45x our parameters and none of its widths brings it down to ours.

``"widths"``
    Identical widths everywhere, unequal parameter counts (the other setting of the
    unmatched difference; benchmarks measure both).

Both sides: no path-channel coupling in the tensor product (ours has none; the peer's
``tp_path_channel_coupling=False``), one hidden layer in the two-body embedding, SiLU,
the same Bessel basis size and polynomial envelope (p = 6), the same average neighbour
count, per-species shift and scale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Hyper", "BENCH", "ACCURACY", "UNMATCHED", "build_ours", "build_peer", "matched_pair",
           "param_count", "flops_per_edge", "ours_energy_forces", "peer_energy_forces",
           "peers_available"]

UNMATCHED = {
    "nequip": ("peer self-connection conditioned on a type embedding (width = the matching "
               "knob); ours one weight per species",
               "peer keeps each tensor-product path as its own channels into linear_2 "
               "(layers 1+: 5 paths -> 160 channels per irrep group); ours sums paths of the "
               "same output irrep before linear_2"),
    "allegro": ("peer readout reads all layers' latents concatenated (3 x latent for 2 layers); "
                "ours the last latent",
                "peer latent MLP of layer k reads all earlier latents; ours the current one",
                "peer two-body embedding: 32-wide type embeddings + Bessel linear; ours one-hot "
                "species + Bessel into one MLP"),
}


@dataclasses.dataclass(frozen=True)
class Hyper:
    """Shared hyperparameters of a pair (Å for ``r_max``)."""

    r_max: float = 5.0
    lmax: int = 1
    parity: bool = True
    nequip_layers: int = 3
    nequip_mul: int = 32
    num_basis: int = 8
    radial_hidden: int = 64
    radial_layers: int = 2
    allegro_layers: int = 2
    allegro_mul: int = 16
    latent: int = 64
    mlp_hidden: int = 64


#: the speed benchmark's settings (bench_mlip.py, bench_inference.py)
BENCH = Hyper()
#: the accuracy benchmark's (smaller, r_max 4 Å: trains on 2 shared cores)
ACCURACY = Hyper(r_max=4.0, nequip_layers=2, nequip_mul=16, radial_hidden=32, allegro_mul=8,
                 latent=32, mlp_hidden=32)


def peers_available() -> bool:
    try:
        import allegro  # noqa: F401
        import nequip  # noqa: F401
    except ImportError:
        return False
    return True


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_ours(arch: str, h: Hyper, species=("Cu",), avg: float = 10.0, dtype: str = "float32",
               mlp_hidden: int | None = None) -> nn.Module:
    """Our Potential (``atomtwin.engines.mlip.model.Potential``)."""
    from atomtwin.engines.mlip import ModelConfig, build_model

    common = dict(species=tuple(species), r_max=h.r_max, lmax=h.lmax, parity=h.parity,
                  num_basis=h.num_basis, avg_num_neighbors=avg, dtype=dtype)
    if arch == "nequip":
        cfg = ModelConfig(architecture="nequip", num_layers=h.nequip_layers, mul=h.nequip_mul,
                          radial_hidden=h.radial_hidden, radial_layers=h.radial_layers, **common)
    else:
        cfg = ModelConfig(architecture="allegro", num_layers=h.allegro_layers, mul=h.allegro_mul,
                          latent=h.latent, mlp_hidden=mlp_hidden or h.mlp_hidden, **common)
    torch.manual_seed(0)
    return build_model(cfg)


def build_peer(arch: str, h: Hyper, species=("Cu",), avg: float = 10.0, dtype: str = "float32",
               shift: float | list = 0.0, scale: float | list = 1.0,
               type_embed: int | None = None) -> nn.Module:
    """nequip's ``NequIPGNNModel`` / nequip-allegro's ``AllegroModel`` (forces by autograd)."""
    from nequip.utils.global_state import set_global_state

    set_global_state()  # nequip requires it before building (sets its default dtype)
    # set_global_state sets float64 only on its first call in a process; set it every time so
    # that a peer is built the same way whatever ran before (tests/conftest.py restores the
    # default dtype after each test)
    torch.set_default_dtype(torch.float64)
    common = dict(seed=0, model_dtype=dtype, type_names=list(species), r_max=h.r_max,
                  avg_num_neighbors=avg, per_type_energy_scales=scale, per_type_energy_shifts=shift)
    if arch == "nequip":
        from nequip.model import NequIPGNNModel

        extra = {} if type_embed is None else {"type_embed_num_features": type_embed}
        return NequIPGNNModel(num_layers=h.nequip_layers, l_max=h.lmax, parity=h.parity,
                              num_features=h.nequip_mul, radial_mlp_depth=h.radial_layers,
                              radial_mlp_width=h.radial_hidden, num_bessels=h.num_basis,
                              **extra, **common)
    from allegro.model import AllegroModel

    return AllegroModel(
        l_max=h.lmax, parity=h.parity, num_layers=h.allegro_layers,
        radial_chemical_embed={"_target_": "allegro.nn.TwoBodyBesselScalarEmbed",
                               "num_bessels": h.num_basis},
        scalar_embed_mlp_hidden_layers_depth=0, num_scalar_features=h.latent,
        num_tensor_features=h.allegro_mul, allegro_mlp_hidden_layers_depth=1,
        allegro_mlp_hidden_layers_width=h.mlp_hidden, tp_path_channel_coupling=False,
        readout_mlp_hidden_layers_depth=1, readout_mlp_hidden_layers_width=h.mlp_hidden, **common)


def matched_pair(arch: str, h: Hyper = BENCH, match: str = "params", species=("Cu",),
                 avg: float = 10.0, dtype: str = "float32", shift: float = 0.0,
                 scale: float = 1.0) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """``(ours, peer, info)``; ``info``: parameter counts, their ratio, the knob and its value,
    the unmatched differences.  Our shift/scale are set to the peer's."""
    kw = dict(species=species, avg=avg, dtype=dtype)
    knob: dict[str, Any] = {}
    if arch == "nequip":
        ours = build_ours(arch, h, **kw)
        n_ours = param_count(ours)
        te = None
        if match == "params":  # the peer's count is affine in the width: solve for ours
            p1 = param_count(build_peer(arch, h, type_embed=1, **kw))
            p2 = param_count(build_peer(arch, h, type_embed=2, **kw))
            te = max(1, round(1 + (n_ours - p1) / (p2 - p1)))
        knob = {"peer type_embed_num_features": te or 32}
        peer = build_peer(arch, h, shift=shift, scale=scale, type_embed=te, **kw)
    else:
        peer = build_peer(arch, h, shift=shift, scale=scale, **kw)
        width = h.mlp_hidden
        if match == "params":  # ours is affine in mlp_hidden: solve for the peer's count
            n0 = param_count(build_ours(arch, h, mlp_hidden=width, **kw))
            n1 = param_count(build_ours(arch, h, mlp_hidden=width + 1, **kw))
            width = max(1, round(width + (param_count(peer) - n0) / (n1 - n0)))
        knob = {"ours mlp_hidden": width}
        ours = build_ours(arch, h, mlp_hidden=width, **kw)
    ours.set_statistics(torch.full((len(species),), float(shift)),
                        torch.full((len(species),), float(scale)))
    n_o, n_p = param_count(ours), param_count(peer)
    info = {"arch": arch, "match": match, "params_ours": n_o, "params_peer": n_p,
            "params_ratio": n_o / n_p, "knob": knob, "unmatched": UNMATCHED[arch]}
    return ours, peer, info


def ours_energy_forces(model: nn.Module) -> Callable[[dict], tuple[Tensor, Tensor]]:
    def run(b: dict) -> tuple[Tensor, Tensor]:
        out = model(b)
        return out["energy"], out["forces"]

    return run


PEER_KEYS = ("pos", "atom_types", "cell", "pbc", "edge_index", "edge_cell_shift", "batch",
             "num_atoms")


def peer_energy_forces(model: nn.Module) -> Callable[[dict], tuple[Tensor, Tensor]]:
    """Call a nequip model on our collated batch (same keys, nequip's names)."""

    def run(b: dict) -> tuple[Tensor, Tensor]:
        out = model({k: b[k] for k in PEER_KEYS})
        return out["total_energy"].reshape(-1), out["forces"]

    return run


def flops_per_edge(run: Callable[[dict], Any], batch: dict) -> float:
    """FLOPs of one energy + forces evaluation per directed edge, by the formulas of
    ``torch.utils.flop_counter`` (its ``flop_registry``: matmul-class ops — mm, bmm, addmm,
    einsum's matmuls, convolutions; element-wise work is not counted).

    Counted in a plain dispatch mode rather than ``FlopCounterMode``, whose module tracker
    hooks fail inside nequip's ``autograd.grad`` ("leaf node passed to
    _will_engine_execute_node")."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    total = [0]

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            f = flop_registry.get(func._overloadpacket)
            if f is not None:
                total[0] += f(*args, **kwargs, out_val=out)
            return out

    with Count():
        run(batch)
    return total[0] / batch["edge_index"].shape[1]
