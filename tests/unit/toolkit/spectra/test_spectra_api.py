"""Spectra API: bad input, alternative inputs giving the same answer, accessor and CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from atomtwin.toolkit.schema import SchemaError, make_dataset
from atomtwin.toolkit.spectra import FrameSpacingWarning, dipole_current, ir_spectrum, vdos

NU0 = (3.0, 7.0)  # THz, two oscillators per atom pair


def oscillators(n_frames=4000, dt=0.005, seed=1, **drop):
    """Four atoms on exact cosines at 3 and 7 THz with charges +-1 (no cell: a molecule)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) * dt
    w = 2 * np.pi * np.array([NU0[0], NU0[0], NU0[1], NU0[1]])
    ph = rng.uniform(0, 2 * np.pi, size=(4, 3))
    amp = 0.05
    u = amp * np.cos(w[None, :, None] * t[:, None, None] + ph[None])
    v = -amp * w[None, :, None] * np.sin(w[None, :, None] * t[:, None, None] + ph[None])
    r0 = np.array([[0, 0, 0], [3, 0, 0], [0, 3, 0], [3, 3, 0]], float)
    q = np.array([1.0, -1.0, 1.0, -1.0])
    arrays = dict(velocities=v, dipole=np.einsum("a,fai->fi", q, u),
                  born_charges=np.broadcast_to(q[None, :, None, None] * np.eye(3), (n_frames, 4, 3, 3)))
    for k in drop:
        arrays.pop(k)
    return make_dataset(r0 + u, ["H", "H", "O", "O"], time=t, **arrays)


def test_no_dipoles_and_no_born_charges_is_a_clear_error():
    ds = oscillators(dipole=True, born_charges=True)
    with pytest.raises(ValueError, match="no 'dipole' or 'polarization' and no 'born_charges'"):
        ir_spectrum(ds, normalization="peak")


def test_too_coarse_frame_spacing_is_an_error_naming_the_spacing():
    ds = oscillators()
    # 5 fs frames: Nyquist 100 THz = 3336 cm^-1; asking for 4000 cm^-1 must fail and say what to do
    with pytest.raises(ValueError, match=r"too coarse.*every"):
        ir_spectrum(ds, normalization="peak", max_frequency=4000.0)


def test_aliased_content_warns():
    # 7 THz motion sampled every 65 fs (Nyquist 7.7 THz): the line sits in the top 10 % of the band
    ds = oscillators(n_frames=2000, dt=0.065)
    with pytest.warns(FrameSpacingWarning, match="too coarse"):
        vdos(ds)


def test_uneven_frames_are_rejected():
    ds = oscillators(n_frames=100)
    t = ds["time"].values.copy()
    t[50:] += 0.001
    with pytest.raises(SchemaError, match="not evenly spaced"):
        vdos(ds.assign_coords(time=("frame", t)))


def test_vdos_from_positions_matches_vdos_from_velocities():
    ds = oscillators()
    a = vdos(ds, max_lag=2.0, n_blocks=4)
    b = vdos(ds.drop_vars("velocities"), max_lag=2.0, n_blocks=4)
    assert b.attrs["velocities"].startswith("finite differences")
    # midpoint velocities with the sinc transfer divided out: equal up to the half-frame shift of the
    # blocks and the kinetic temperature normalisation (0.5 %)
    peak = a["vdos_total"].values.max()
    assert np.abs(a["vdos_total"].values - b["vdos_total"].values).max() < 5e-3 * peak
    for sp, nu0 in zip(("H", "O"), NU0, strict=True):
        line = a["vdos"].sel(species=sp)
        assert float(line["frequency"][int(np.argmax(line.values))]) == pytest.approx(nu0, abs=0.5 / 2.0)


def test_lazy_dataset_gives_the_same_current_and_accessor_works():
    ds = oscillators()
    eager = dipole_current(ds)
    lazy = dipole_current(ds.chunk({"frame": 512}))
    assert eager.attrs["source"] == "born_charges"
    assert lazy.values == pytest.approx(eager.values, rel=1e-12, abs=1e-12)
    # fixed Born charges given as an argument equal the stored per-frame ones
    q = np.array([1.0, -1.0, 1.0, -1.0])[:, None, None] * np.eye(3)
    fixed = dipole_current(ds.drop_vars("born_charges"), born_charges=q, source="born_charges")
    assert fixed.values == pytest.approx(eager.values, rel=1e-12, abs=1e-12)
    via = ds.atoms.ir_spectrum(normalization="peak", unit="THz", max_lag=2.0)
    # same amplitudes: the current ~ omega u makes the 7 THz line the strongest
    assert float(via["frequency"][int(np.argmax(via["absorption"].values))]) == pytest.approx(NU0[1], abs=0.25)


def test_absolute_ir_without_cell_or_volume_says_what_to_pass():
    with pytest.raises(ValueError, match="volume="):
        ir_spectrum(oscillators(), temperature=300.0)


def run_cli(argv):
    """Our command through its own parser (main() would also import every engine's CLI)."""
    import argparse

    from atomtwin.toolkit.spectra.cli import register

    parser = argparse.ArgumentParser(prog="atomtwin")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_spectrum_json_and_errors(tmp_path, capsys):
    from atomtwin.toolkit.io import write

    path = tmp_path / "osc.nc"
    ds = oscillators()
    write(ds, path)
    assert run_cli(["spectrum", str(path), "--kind", "ir", "--unit", "THz", "--volume", "1000",
                    "--temperature", "300", "--max-lag", "2", "--max-frequency", "20", "--json",
                    "--plot", str(tmp_path / "ir.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert any(abs(p - 3.0) < 0.25 for p in out["peaks"]) and any(abs(p - 7.0) < 0.25 for p in out["peaks"])
    assert out["variables"]["absorption"]["units"] == "cm^-1"
    assert (tmp_path / "ir.png").stat().st_size > 0
    with pytest.raises(ValueError, match="too coarse"):
        run_cli(["spectrum", str(path), "--kind", "vdos", "--max-frequency", "500"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write(ds.drop_vars(["dipole", "born_charges"]), tmp_path / "nodip.nc")
    with pytest.raises(ValueError, match="born_charges"):
        run_cli(["spectrum", str(tmp_path / "nodip.nc"), "--kind", "ir", "--json"])


# -- issue 19: refuse spectra too short for what they are asked to show ----------------------


def _frames_needed(err) -> int:
    import re

    return int(re.search(r"at least (\d+) frames", str(err.value)).group(1))


def test_too_few_frames_is_refused_with_the_length_needed():
    from atomtwin.toolkit.errors import InputError

    # 11 frames: a correlation length of 2 frames, a resolution as coarse as the whole band
    with pytest.raises(InputError, match=r"VDOS: too short .* at least \d+ frames") as err:
        vdos(oscillators(n_frames=11))
    n = _frames_needed(err)
    # the length named is enough (and one frame less than a tenth-of-the-band resolution
    # needs would not be: the rule is 10 bins below the Nyquist frequency of 100 THz)
    res = vdos(oscillators(n_frames=n))
    assert res.attrs["resolution_thz"] <= 100.0 / 10 + 1e-9
    with pytest.raises(InputError, match="IR spectrum: too short"):
        ir_spectrum(oscillators(n_frames=11), normalization="peak")


def test_resolution_coarser_than_the_features_asked_for_is_refused():
    from atomtwin.toolkit.errors import InputError
    from atomtwin.toolkit.spectra import dielectric_function

    ds = oscillators(n_frames=400)  # default correlation length 0.66 ps: 1.5 THz resolution
    with pytest.raises(InputError, match=r"asked resolution 0.5 THz .* at least (\d+) frames") as err:
        vdos(ds, resolution=0.5, n_blocks=2)
    n = _frames_needed(err)
    assert vdos(oscillators(n_frames=n), resolution=0.5, n_blocks=2).attrs["resolution_thz"] <= 0.5
    with pytest.raises(InputError, match=r"asked resolution 20 cm\^-1"):
        ir_spectrum(ds, normalization="peak", resolution=20.0, unit="cm-1")
    with pytest.raises(InputError, match="dielectric function: too short"):
        dielectric_function(ds, temperature=300.0, volume=1000.0, resolution=0.5)


def test_cli_refuses_a_short_spectrum_and_lists_warnings_in_json(tmp_path, capsys):
    from atomtwin.toolkit.cli import main
    from atomtwin.toolkit.io import write

    write(oscillators(n_frames=11), tmp_path / "short.nc")
    assert main(["spectrum", str(tmp_path / "short.nc"), "--kind", "vdos"]) == 2
    cap = capsys.readouterr()
    assert "peaks at" not in cap.out and "at least" in cap.err and "frames" in cap.err
    # a correlation length over half a block warns: the warning is in the JSON too
    write(oscillators(n_frames=1000), tmp_path / "osc.nc")
    assert main(["spectrum", str(tmp_path / "osc.nc"), "--kind", "vdos", "--max-lag", "3", "--blocks", "1",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert any("correlation length" in w for w in out["warnings"])
