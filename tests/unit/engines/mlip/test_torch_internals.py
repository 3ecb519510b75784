"""The version-checked gateway to torch's private compile APIs."""

from __future__ import annotations

import pytest
import torch
from atomtwin.engines.mlip import torch_internals as TI


def test_every_internal_resolves_on_this_torch_and_the_range_is_stated():
    # the suite runs on a checked torch: every name must resolve (else update CHECKED_TORCH)
    major_minor = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    lo, hi = TI.CHECKED_TORCH
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert as_tuple(lo) <= as_tuple(major_minor) <= as_tuple(hi)
    for name in TI.NAMES:
        assert TI.require(name) is not None
    with TI.dynamo_config(trace_autograd_ops=True):
        assert TI.require("dynamo_config").trace_autograd_ops is True
    assert callable(TI.make_fx(lambda x: x * 2))


def test_missing_attribute_names_it_the_versions_and_the_fix(monkeypatch):
    monkeypatch.setitem(TI.NAMES, "aoti_load_package", ("torch._inductor", "aoti_load_package_gone"))
    with pytest.raises(TI.TorchInternalsError) as e:
        TI.aoti_load_package("model.pt2")
    msg = str(e.value)
    assert "torch._inductor.aoti_load_package_gone" in msg and torch.__version__ in msg
    assert "checked with torch" in msg and "Fix: install a checked torch" in msg


def test_unknown_config_option_is_named():
    with pytest.raises(TI.TorchInternalsError, match="torch._dynamo.config.no_such_switch"):
        TI.dynamo_config(no_such_switch=True)


def test_tracing_is_seen_by_make_fx_and_torch_compile_but_not_in_eager():
    # the eager-only autograd functions (lean convolution, Allegro contraction) step aside
    # when a graph is traced; a trace that went unseen would export their backward instead
    seen = []

    def f(x):
        seen.append(TI.tracing())
        return x * 2

    f(torch.ones(2))
    TI.make_fx(f, tracing_mode="symbolic")(torch.ones(3))
    torch.compile(f, backend="eager", fullgraph=True)(torch.ones(4))
    assert seen == [False, True, True]
