"""Reactions over a trajectory: bonds per pair, species and their counts, coordination,
bond-forming and bond-breaking events, rates with error bars, species lifetimes.

Reaction equations between species (``"PS4 -> PS3 + S"``) come out of the same pass.

One pass over the frames (:class:`ReactionAnalysis`), a chunk of frames at a time; each
frame costs one cell-list neighbour search within the longest ``r_break`` and one
connected-components labelling, both linear in the number of atoms.

Rates and their error bars: :mod:`atomtwin.toolkit.reactions.rates`; species instances and
reaction equations: :mod:`atomtwin.toolkit.reactions.species`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.progress import progress as _progress
from atomtwin.toolkit.reactions.cutoffs import (
    BREAK_FACTOR,
    FORM_FACTOR,
    BondCutoffs,
    bond_cutoffs,
    pair_name,
)
from atomtwin.toolkit.reactions.graph import (
    BondTracker,
    FormulaBook,
    components,
    frame_times,
    iter_frames,
)
from atomtwin.toolkit.reactions.rates import event_rates
from atomtwin.toolkit.reactions.species import SpeciesTracker

__all__ = [
    "ReactionAnalysis",
    "reactions",
    "bond_events",
    "species_counts",
    "event_rates",
    "coordination_numbers",
    "bond_graph",
]

#: coordination numbers above this are counted in the last bin
MAX_CN = 16


def _species_of(ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds[S.SPECIES].values).astype(str)


def _codes(sp: np.ndarray, cut: BondCutoffs) -> np.ndarray:
    """(n_atoms,) index of each atom's species in ``cut.species``."""
    lookup = {s: k for k, s in enumerate(cut.species)}
    uniq, inv = np.unique(sp, return_inverse=True)
    return np.array([lookup[s] for s in uniq], np.int64)[inv.ravel()]


class ReactionAnalysis:
    """Bond graph, species, coordination and events of a trajectory, in one pass.

    Parameters
    ----------
    cutoffs, pairs, covalent, form_factor, break_factor, hysteresis
        Bond criteria, see :func:`~atomtwin.toolkit.reactions.cutoffs.bond_cutoffs`.
    track_species
        Label connected components of the covalent bonds (formulas, counts, lifetimes).
    contact_events
        Record the forming/breaking of non-covalent contacts too (Li-S, Li-Cl: every Li hop
        in an ionic conductor, possibly millions of events); ``False`` keeps the covalent
        events only, and rates are then given for covalent pairs only.
    frame_chunk
        Frames read at a time (``None``: as many as fit in 8 MiB of positions, 1 to 64).
    progress
        Progress bar (``None``: as the CLI set it).

    Results (after :meth:`compute`)
    --------------------------------
    bonds : DataArray (frame, pair)
        Number of bonds of each pair type.
    species : DataArray (frame, formula)
        Number of molecules/units of each formula (Hill order), most abundant first.
    coordination : DataArray (frame, centre, neighbour, cn)
        Number of ``centre`` atoms with ``cn`` bonds to ``neighbour`` atoms
        (``cn = MAX_CN`` holds that many or more).
    events : Dataset (event)
        ``time`` (ps), ``frame`` (first frame of the new state), ``kind`` ("form"/"break"),
        ``i``, ``j`` (atom indices), ``pair``.
    instances : Dataset (instance)
        Every species instance (a fixed set of atoms forming one component):
        ``formula``, ``start``/``end`` times (ps), ``ended`` (False: still there at the end).
    reactions : Dataset (reaction)
        Every change of species between two frames as an equation, ``"PS4 -> PS3 + S"``:
        ``time`` (ps), ``frame`` (first frame of the products), ``equation``.
    """

    def __init__(
        self,
        *,
        cutoffs: str | Mapping | None = None,
        pairs: str | Iterable[str] | None = None,
        covalent: str | Iterable[str] | None = None,
        form_factor: float = FORM_FACTOR,
        break_factor: float = BREAK_FACTOR,
        hysteresis: bool = True,
        track_species: bool = True,
        contact_events: bool = True,
        frame_chunk: int | None = None,
        progress: bool | None = None,
    ):
        self.options = dict(
            cutoffs=cutoffs,
            pairs=pairs,
            covalent=covalent,
            form_factor=form_factor,
            break_factor=break_factor,
            hysteresis=hysteresis,
        )
        self.track_species = bool(track_species)
        self.contact_events = bool(contact_events)
        self.frame_chunk = frame_chunk
        self.progress = progress
        self.criteria: BondCutoffs | None = None

    # -- the pass ------------------------------------------------------------------------
    def compute(self, ds: xr.Dataset) -> ReactionAnalysis:
        """Analyse ``ds`` (any schema trajectory, periodic or not, lazy or in memory)."""
        S.validate(ds)
        sp = _species_of(ds)
        cut = bond_cutoffs(list(dict.fromkeys(sp.tolist())), **self.options)
        self.criteria = cut
        codes = _codes(sp, cut)
        n, ns, nf = sp.size, len(cut.species), ds.sizes[S.FRAME]
        t = frame_times(ds)
        tracker = BondTracker(cut, codes, S.pbc_of(ds))
        cov_code = cut.covalent.ravel()
        book = FormulaBook(sp)
        counts_by_code = np.zeros((nf, ns * ns), np.int64)
        coord = np.zeros((nf, ns, ns, MAX_CN + 1), np.int32)
        members = [np.flatnonzero(codes == c) for c in range(ns)]
        ev_frame, ev_key, ev_kind = [], [], []
        sp_rows: list[tuple[np.ndarray, np.ndarray]] = []
        inst = SpeciesTracker(book.names)
        frames = _progress(
            iter_frames(ds, self.frame_chunk), total=nf, desc="reactions", progress=self.progress
        )
        for f, pos, cell in frames:
            tracker.step(pos, cell)
            counts_by_code[f] = np.bincount(tracker.pair_code, minlength=ns * ns)
            cn = np.minimum(tracker.coordination(), MAX_CN)
            for c in range(ns):
                if members[c].size:
                    sub = cn[members[c]]
                    for s in range(ns):
                        coord[f, c, s] = np.bincount(sub[:, s], minlength=MAX_CN + 1)
            if f > 0:
                for kind, keys in ((0, tracker.formed), (1, tracker.broken)):
                    if keys.size and not self.contact_events:
                        keys = keys[cov_code[tracker.split(keys)[2]]]
                    if keys.size:
                        ev_frame.append(np.full(keys.size, f))
                        ev_key.append(keys)
                        ev_kind.append(np.full(keys.size, kind, np.int8))
            if self.track_species:
                cov = tracker.covalent_mask()
                n_comp, labels = components(n, tracker.i[cov], tracker.j[cov])
                fid, ident = book.frame(n_comp, labels)
                u, c = np.unique(fid, return_counts=True)
                sp_rows.append((u, c))
                inst.update(f, labels, ident, fid)
        self._finish(
            ds, t, tracker, book, counts_by_code, coord, ev_frame, ev_key, ev_kind, sp_rows, inst
        )
        return self

    def _finish(
        self, ds, t, tracker, book, counts_by_code, coord, ev_frame, ev_key, ev_kind, sp_rows, inst
    ) -> None:
        cut = self.criteria
        ns = len(cut.species)
        nf = t.size
        frame_coords = {S.FRAME: np.arange(nf), S.TIME: (S.FRAME, t, {"units": "ps"})}
        # bonds per pair type (a pair and its mirror code add up)
        names = cut.pairs()
        col = np.zeros((nf, len(names)), np.int64)
        for a in range(ns):
            for b in range(ns):
                name = pair_name(cut.species[a], cut.species[b])
                if name in names:
                    col[:, names.index(name)] += counts_by_code[:, a * ns + b]
        self.bonds = xr.DataArray(
            col,
            dims=(S.FRAME, "pair"),
            coords={**frame_coords, "pair": names},
            name="bonds",
            attrs={"units": "1", "long_name": "bonds per pair type"},
        )
        self.coordination = xr.DataArray(
            coord,
            dims=(S.FRAME, "centre", "neighbour", "cn"),
            coords={
                **frame_coords,
                "centre": list(cut.species),
                "neighbour": list(cut.species),
                "cn": np.arange(MAX_CN + 1),
            },
            name="coordination",
            attrs={"units": "atoms", "long_name": "centre atoms with cn bonds to neighbour atoms"},
        )
        # events
        if ev_key:
            fr, key, kind = (
                np.concatenate(ev_frame),
                np.concatenate(ev_key),
                np.concatenate(ev_kind),
            )
        else:
            fr, key, kind = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8)
        i, j, code = tracker.split(key)
        pair_of_code = np.array(
            [pair_name(cut.species[c // ns], cut.species[c % ns]) for c in range(ns * ns)] or [""]
        )
        self.events = xr.Dataset(
            {
                "time": ("event", t[fr], {"units": "ps"}),
                "frame": ("event", fr),
                "kind": ("event", np.where(kind == 0, "form", "break")),
                "i": ("event", i),
                "j": ("event", j),
                "pair": ("event", pair_of_code[code]),
            },
            attrs={"duration_ps": float(t[-1] - t[0]) if nf else 0.0, "n_frames": nf},
        )
        # species
        if self.track_species:
            mat = np.zeros((nf, len(book.names)), np.int64)
            for f, (u, c) in enumerate(sp_rows):
                mat[f, u] = c
            order = np.lexsort((np.array(book.names), -mat.sum(axis=0))) if book.names else []
            self.species = xr.DataArray(
                mat[:, order],
                dims=(S.FRAME, "formula"),
                coords={**frame_coords, "formula": [book.names[k] for k in order]},
                name="species",
                attrs={
                    "units": "molecules",
                    "long_name": "connected components of the covalent bonds",
                },
            )
            self.instances = inst.instances(t)
            self.reactions = inst.reaction_events(t)
        else:
            self.species = self.instances = self.reactions = None
        self.attrs = {
            "pairs_table": json.dumps(cut.table()),
            "hysteresis": int(self.options["hysteresis"]),
            "form_factor": float(self.options["form_factor"]),
            "break_factor": float(self.options["break_factor"]),
            "covalent_pairs": ",".join(n for n, v in cut.table().items() if v["covalent"]),
            "source": ds.attrs.get(S.SOURCE, ""),
        }

    # -- derived results -----------------------------------------------------------------
    def rates(self, n_blocks: int = 5) -> xr.Dataset:
        """Event rates per pair and kind; see :func:`event_rates`."""
        bonds = self.bonds
        if not self.contact_events:
            table = self.criteria.table()
            bonds = bonds.sel(pair=[p for p in bonds["pair"].values if table[str(p)]["covalent"]])
        return event_rates(self.events, bonds, n_blocks=n_blocks)

    def lifetimes(self) -> xr.Dataset:
        """Mean lifetime of each species (ps) with its error; ``inf`` if none ended.

        ``tau_X = integral(N_X dt) / n_X`` over the run (exponential lifetimes, censored
        instances included), error ``tau_X / sqrt(n_X)``.
        """
        if self.species is None:
            raise ValueError("species were not tracked (track_species=False).")
        t = np.asarray(self.species[S.TIME].values)
        dt = np.diff(t)
        expo = (np.asarray(self.species.values)[:-1] * dt[:, None]).sum(axis=0)
        ended = np.asarray(self.instances["ended"].values)
        form = np.asarray(self.instances["formula"].values)
        names = list(self.species["formula"].values)
        n_end = np.array([np.count_nonzero(ended & (form == nm)) for nm in names])
        with np.errstate(divide="ignore", invalid="ignore"):
            tau = np.where(n_end > 0, expo / np.maximum(n_end, 1), np.inf)
            err = np.where(n_end > 0, tau / np.sqrt(np.maximum(n_end, 1)), np.inf)
        return xr.Dataset(
            {
                "lifetime": ("formula", tau, {"units": "ps"}),
                "lifetime_err": ("formula", err, {"units": "ps"}),
                "n_ended": ("formula", n_end),
                "exposure": (
                    "formula",
                    expo,
                    {"units": "ps", "long_name": "integral of the count over time"},
                ),
            },
            coords={"formula": names},
        )

    def reaction_counts(self) -> xr.DataArray:
        """How often each reaction equation happened over the run (most frequent first)."""
        if self.reactions is None:
            raise ValueError("species were not tracked (track_species=False).")
        eq, n = np.unique(
            np.asarray(self.reactions["equation"].values).astype(str), return_counts=True
        )
        order = np.lexsort((eq, -n))
        return xr.DataArray(
            n[order],
            dims="equation",
            coords={"equation": eq[order]},
            name="reaction_counts",
            attrs={"units": "events"},
        )

    def mean_coordination(self) -> xr.DataArray:
        """(frame, centre, neighbour) mean number of ``neighbour`` bonds per ``centre`` atom."""
        c = self.coordination
        n = c.sum("cn")
        m = (c * c["cn"]).sum("cn") / n.where(n > 0)
        return m.assign_attrs(units="bonds per atom")

    def to_dataset(self, n_blocks: int = 5) -> xr.Dataset:
        """Every result in one Dataset (for netCDF)."""
        parts = {"bonds": self.bonds, "coordination": self.coordination}
        out = xr.Dataset(parts)
        if self.species is not None:
            out["species"] = self.species
            lt = self.lifetimes()
            out = out.merge(lt.rename({k: f"species_{k}" for k in lt.data_vars}))
        ev = self.events.rename({k: f"event_{k}" for k in self.events.data_vars})
        out = out.merge(ev.drop_attrs() if hasattr(ev, "drop_attrs") else ev)
        if self.reactions is not None:
            rx = self.reactions.rename({k: f"reaction_{k}" for k in self.reactions.data_vars})
            out = out.merge(rx)
        r = self.rates(n_blocks)
        out = out.merge(
            r.rename({k: f"rate_{k}" if not k.startswith("rate") else k for k in r.data_vars})
        )
        out.attrs.update(self.attrs)
        return out

    def summary(self, n_blocks: int = 5, top: int = 8) -> dict:
        """A JSON-ready summary: species first/last frame, bonds, mean coordination, events,
        rates, lifetimes (``None`` where a number does not exist: no ended lifetime)."""
        out: dict = {
            "n_frames": int(self.bonds.sizes[S.FRAME]),
            "duration_ps": float(self.events.attrs["duration_ps"]),
            "pairs": self.criteria.table(),
        }
        b = self.bonds
        out["bonds"] = {
            str(p): {"first": int(b.sel(pair=p)[0]), "last": int(b.sel(pair=p)[-1])}
            for p in b["pair"].values
        }
        if self.species is not None:
            s = self.species
            first, last = s.isel(frame=0), s.isel(frame=-1)
            keep = [
                str(f)
                for f in s["formula"].values
                if int(first.sel(formula=f)) or int(last.sel(formula=f))
            ]
            keep = sorted(
                keep, key=lambda f: -int(first.sel(formula=f)) - int(last.sel(formula=f))
            )[:top]
            lt = self.lifetimes()
            out["species"] = {
                f: {
                    "first": int(first.sel(formula=f)),
                    "last": int(last.sel(formula=f)),
                    "lifetime_ps": _num(lt["lifetime"].sel(formula=f)),
                    "lifetime_err_ps": _num(lt["lifetime_err"].sel(formula=f)),
                    "n_ended": int(lt["n_ended"].sel(formula=f)),
                }
                for f in keep
            }
        if self.reactions is not None:
            rc = self.reaction_counts()
            out["reactions"] = {
                str(e): int(c)
                for e, c in zip(rc["equation"].values[:top], rc.values[:top], strict=True)
            }
        # product indicators: mean coordination of each centre by each neighbour species,
        # first and last frame (e.g. "P by S" 4 -> 1 when PS4 is reduced)
        m = self.mean_coordination()
        out["coordination"] = {}
        for c in m["centre"].values:
            for nb in m["neighbour"].values:
                x = m.sel(centre=c, neighbour=nb)
                a, z = float(x[0]), float(x[-1])
                if np.isfinite(a) and (a > 0 or z > 0):
                    out["coordination"][f"{c} by {nb}"] = {"first": a, "last": z}
        r = self.rates(n_blocks)
        out["events"] = {}
        for p in r["pair"].values:
            for k in r["kind"].values:
                x = r.sel(pair=p, kind=k)
                had_bonds = int(self.bonds.sel(pair=p)[0]) > 0
                if int(x["n_events"]) or (k == "break" and had_bonds):
                    out["events"][f"{p} {k}"] = {
                        kk: (int(x[kk]) if kk == "n_events" else _num(x[kk]))
                        for kk in (
                            "n_events",
                            "rate",
                            "rate_err",
                            "rate_constant",
                            "rate_constant_err",
                        )
                    }
                    out["events"][f"{p} {k}"]["covalent"] = bool(out["pairs"][p]["covalent"])
        return out


def _num(x) -> float | None:
    """A float for JSON: ``None`` for inf/NaN (no lifetime ended, no rate constant)."""
    v = float(x)
    return v if np.isfinite(v) else None


# -- functions (also ds.atoms.<name>) -------------------------------------------------------
def reactions(ds: xr.Dataset, **kwargs) -> ReactionAnalysis:
    """``ReactionAnalysis(**kwargs).compute(ds)``: bonds, species, coordination, events."""
    return ReactionAnalysis(**kwargs).compute(ds)


def bond_events(ds: xr.Dataset, **kwargs) -> xr.Dataset:
    """Bond-forming and bond-breaking events (Dataset over ``event``), species not tracked."""
    return ReactionAnalysis(track_species=False, **kwargs).compute(ds).events


def species_counts(ds: xr.Dataset, **kwargs) -> xr.DataArray:
    """Counts of each species (frame, formula) from the covalent bonds."""
    return ReactionAnalysis(**kwargs).compute(ds).species


def coordination_numbers(
    ds: xr.Dataset,
    centre: str,
    neighbour: str,
    *,
    frame_chunk: int | None = None,
    progress: bool | None = None,
    **kwargs,
) -> xr.DataArray:
    """Per-atom coordination: bonds of each ``centre`` atom to ``neighbour`` atoms.

    Returns
    -------
    DataArray (frame, atom) int16 over the ``centre`` atoms (``atom`` holds their global
    indices), e.g. ``coordination_numbers(ds, "P", "S")`` for the S around each P.
    """
    from atomtwin.toolkit.errors import InputError

    S.validate(ds)
    sp = _species_of(ds)
    for role, name in (("centre", centre), ("neighbour", neighbour)):
        if name not in set(sp.tolist()):
            raise InputError(
                f"{role} species '{name}' is not in the trajectory (it holds "
                f"{', '.join(sorted(set(sp.tolist())))}). Fix: choose one of those."
            )
    cut = bond_cutoffs(list(dict.fromkeys(sp.tolist())), **kwargs)
    codes = _codes(sp, cut)
    idx = np.flatnonzero(sp == centre)
    s = cut.species.index(neighbour)
    tracker = BondTracker(cut, codes, S.pbc_of(ds))
    nf = ds.sizes[S.FRAME]
    out = np.zeros((nf, idx.size), np.int16)
    for f, pos, cell in _progress(
        iter_frames(ds, frame_chunk), total=nf, desc="coordination", progress=progress
    ):
        tracker.step(pos, cell)
        out[f] = tracker.coordination()[idx, s]
    return xr.DataArray(
        out,
        dims=(S.FRAME, S.ATOM),
        coords={
            S.FRAME: np.arange(nf),
            S.TIME: (S.FRAME, frame_times(ds), {"units": "ps"}),
            S.ATOM: idx,
        },
        name=f"cn_{centre}_{neighbour}",
        attrs={"units": "bonds", "long_name": f"{neighbour} bonded to each {centre}"},
    )


def bond_graph(ds: xr.Dataset, frame: int = 0, **kwargs) -> xr.Dataset:
    """Bonds of one frame, without history: pairs closer than the middle of the hysteresis
    band, ``(r_form + r_break) / 2`` (the rule for a trajectory's first frame).

    Returns
    -------
    Dataset over ``bond``: ``i``, ``j`` (atom indices, ``i < j``), ``distance`` (Å, shortest
    image), ``pair`` (e.g. "P-S"), ``covalent`` (bool: the bond joins species).
    """
    S.validate(ds)
    sp = _species_of(ds)
    cut = bond_cutoffs(list(dict.fromkeys(sp.tolist())), **kwargs)
    codes = _codes(sp, cut)
    tracker = BondTracker(cut, codes, S.pbc_of(ds))
    one = ds.isel({S.FRAME: [frame]})
    _, pos, cell = next(iter_frames(one, 1))
    tracker.step(pos, cell)
    ns = len(cut.species)
    names = np.array([pair_name(cut.species[c // ns], cut.species[c % ns]) for c in range(ns * ns)])
    return xr.Dataset(
        {
            "i": ("bond", tracker.i),
            "j": ("bond", tracker.j),
            "distance": ("bond", tracker.distance, {"units": "Å"}),
            "pair": ("bond", names[tracker.pair_code]),
            "covalent": ("bond", tracker.covalent_mask()),
        },
        attrs={"frame": int(frame)},
    )
