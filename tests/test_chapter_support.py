"""Profiles, provenance, claims and the ODE block that chapters build on."""

import pytest
import torch

import nodekit
from nodekit import report
from nodekit.models import ConvField, MLPField, ODEBlock, count_parameters, forward_nfe, small_mnist_odenet
from nodekit.profiles import PROFILES, UnknownProfileError, check_profile, select
from nodekit.provenance import resolve_device, start_chapter


def test_unknown_profile_lists_known_ones():
    with pytest.raises(UnknownProfileError) as err:
        check_profile("nonsense")
    for name in PROFILES:
        assert name in str(err.value)


def test_select_needs_one_setting_per_profile():
    assert select("full", quick=1, full=2) == 2
    with pytest.raises(ValueError, match="missing"):
        select("quick", quick=1)
    with pytest.raises(UnknownProfileError):
        select("fast", quick=1, full=2)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu-please")


def test_start_chapter_records_provenance():
    run = start_chapter("test", "quick", "cpu", seed=3)
    first = torch.rand(1)
    start_chapter("test", "quick", "cpu", seed=3)
    assert torch.equal(first, torch.rand(1)), "the seed must fix torch's RNG"
    run.record_data("toy data, 10 points")
    seconds = run.finish()
    text = repr(run)
    for field in ("quick", "cpu", torch.__version__, nodekit.__version__, "toy data, 10 points", "git commit"):
        assert field in text
    assert seconds >= 0 and "wall time" in text and "(running)" not in text
    assert "<table" in run._repr_html_()


def test_check_prints_verdict_and_raises_when_false(capsys):
    report.check("one is one", True)
    assert capsys.readouterr().out.strip() == "[holds] one is one"
    with pytest.raises(report.ClaimFailed, match="two is one.*measured: 2"):
        report.check("two is one", False, measured="2")


def test_check_report_mode_prints_failures_without_raising(monkeypatch, capsys):
    monkeypatch.setenv("NODEKIT_CLAIMS", "report")
    report.check("two is one", False)
    assert capsys.readouterr().out.strip() == "[FAILS] two is one"
    monkeypatch.setenv("NODEKIT_CLAIMS", "warn")
    with pytest.raises(ValueError, match="NODEKIT_CLAIMS='warn'.*'report'"):
        report.check("one is one", True)


def test_table_renders_markdown():
    md = report.table(["a", "b"], [(1, 2)], caption="c").data
    assert "| a | b |" in md and "| 1 | 2 |" in md and "**c**" in md


@pytest.mark.parametrize("field", [MLPField(3, 16), MLPField(3, 16, time_dependent=True)])
def test_ode_block_records_nfe_and_matches_solver(field):
    block = ODEBlock(field, t1=0.5, method="rk4", options={"step_size": 0.1})
    z = torch.randn(4, 3)
    out = block(z)
    assert block.last_stats.nfe == 5 * 4
    expected = nodekit.odeint(field, z, torch.tensor([0.0, 0.5]), method="rk4", options={"step_size": 0.1})[-1]
    assert torch.allclose(out, expected)


def test_conv_field_and_small_odenet_shapes():
    field = ConvField(8)
    x = torch.randn(2, 8, 6, 6)
    assert field(torch.tensor(0.3), x).shape == x.shape
    net = small_mnist_odenet(channels=8, method="euler", options={"step_size": 0.5})
    logits = net(torch.randn(3, 1, 28, 28))
    assert logits.shape == (3, 10)
    assert forward_nfe(net) == 2
    assert count_parameters(net) == sum(p.numel() for p in net.parameters())
