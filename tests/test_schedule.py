import pytest

from chggen_plugins.errors import ChggenError
from chggen_plugins.sampling.schedule import geometric_sigmas, repaint_schedule


def test_paper_schedule_counts():
    walk = repaint_schedule(200, jump_length=10, resamples=3)
    assert sum(a > b for a, b in walk) == 580
    assert sum(a < b for a, b in walk) == 380


def test_walk_is_connected_and_spans_the_ladder():
    walk = repaint_schedule(50, jump_length=5, resamples=4)
    assert walk[0][0] == 49 and walk[-1] == (0, -1)
    assert all(abs(a - b) == 1 for a, b in walk)
    assert all(b == a for (_, a), (b, _) in zip(walk, walk[1:]))
    assert max(max(pair) for pair in walk) == 49
    # every level below the top segment is reached from above resamples times
    arrivals = [b for a, b in walk if a > b]
    assert arrivals.count(3) == 4 and arrivals.count(47) == 1


def test_no_resampling_is_a_plain_descent():
    assert repaint_schedule(7, 3, 1) == [(6, 5), (5, 4), (4, 3), (3, 2), (2, 1), (1, 0), (0, -1)]


@pytest.mark.parametrize("kwargs", [dict(jump_length=0), dict(resamples=0), dict(resamples=1.5)])
def test_bad_schedule_arguments(kwargs):
    with pytest.raises(ChggenError, match="RePaint schedule"):
        repaint_schedule(20, **kwargs)


def test_geometric_ladder():
    sigmas = geometric_sigmas(10.0, 0.01, 200)
    assert sigmas[0].item() == pytest.approx(0.01) and sigmas[-1].item() == pytest.approx(10.0)
    ratios = sigmas[1:] / sigmas[:-1]
    assert ratios.min().item() == pytest.approx(ratios.max().item())
    with pytest.raises(ChggenError, match="sigma_max > sigma_min"):
        geometric_sigmas(0.01, 10.0, 200)
