"""Train the shipped electric-enthalpy model of the rock-salt model crystal.

``OMP_NUM_THREADS=1 python data/electric/make_model.py`` (60 epochs, about 4 minutes on one
CPU core) writes
``data/electric/rocksalt_model.pt``: an :class:`atomtwin.engines.mlip.electric.ElectricPotential`
trained on frames of :class:`atomtwin.engines.mlip.electric_crystal.RockSaltCrystal` (8- and 64-atom
cells, random displacements with rms 0.03-0.15 Å per component, fields up to 0.05 V/Å) with
energy, force, polarization, Born-charge and polarizability labels, plus its validation
metrics on independent frames.  Epoch-bounded (no wall-clock limit), seeded and
single-threaded: on the same versions a rerun writes the same bytes (``sha256sum`` against
``data/SHA256SUMS``).  The stored history leaves out wall-clock times for that reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from atomtwin.engines.mlip.electric import save_electric
from atomtwin.engines.mlip.electric_crystal import RockSaltCrystal, random_frames
from atomtwin.engines.mlip.electric_train import electric_graph, evaluate_electric, train_electric

CONFIG = dict(species=["Na", "Cl"], r_max=4.5, num_layers=2, lmax=1, parity=True, mul=16, num_basis=8,
              radial_hidden=32, radial_layers=2, dtype="float64")
WEIGHTS = {"energy": 10.0, "forces": 1.0, "polarization": 10.0, "born_charges": 1.0, "polarizability": 10.0}


def main(out: Path, epochs: int = 60) -> None:
    torch.set_num_threads(1)
    small, large = RockSaltCrystal(1), RockSaltCrystal(2)
    train = random_frames(small, 224, seed=11) + random_frames(large, 24, seed=12)
    val = random_frames(small, 32, seed=21) + random_frames(large, 4, seed=22)
    model, info = train_electric(train, CONFIG, val_frames=val, epochs=epochs, batch_size=16, lr=1e-2,
                                 weights=WEIGHTS, seed=0, max_time_s=None, progress=True)
    metrics = evaluate_electric(model, [electric_graph(f, model.species, model.r_max) for f in val])
    history = [{k: v for k, v in row.items() if k != "wall_s"} for row in info["history"]]
    save_electric(out, model, {"metrics": metrics, "history": history, "weights": WEIGHTS,
                               "train_frames": "random_frames(RockSaltCrystal(1), 224, seed=11) + "
                                               "random_frames(RockSaltCrystal(2), 24, seed=12)"})
    print(metrics)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("rocksalt_model.pt"))
