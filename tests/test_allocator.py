"""The allocator setting earns its place: with it, a sampling run's page faults stop growing with its calls.

glibc's default thresholds adapt as the run goes, so the faults of an untuned run vary by a factor of
five between identical runs (measured here: 15,600-106,000 for 10 levels, 19,000-530,000 for 40); the
tuned run's do not (2,500-3,900 for either). The test checks what the setting promises (the pages are
kept: a four times longer run faults no more pages) and that the untuned run of the same length faults
clearly more, with a margin that holds across that spread.
"""

import os
import subprocess
import sys

import pytest

SAMPLING = """
import resource, torch
import chggen_plugins
from chggen_plugins.allocator import keep_freed_memory
from pymatgen.core import Lattice, Structure
from chggen_plugins import InpaintTask, sample_tasks
from chggen_native import NativeScoreModel
from chggen_plugins.sampling.inpaint import SamplerSettings
torch.set_num_threads(1)
host = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
model = NativeScoreModel.untrained(frozenset({3, 14})).with_levels(LEVELS, 1)  # the shipped network's size
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
sample_tasks([InpaintTask(host, {"Li": 4}, n_samples=8)], model, seed=0, settings=SamplerSettings(LEVELS, 1))
print(keep_freed_memory(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def page_faults(levels: int, **env: str) -> tuple[bool, int]:
    """(whether the thresholds were set, minor page faults of one sampling run) in a fresh process."""
    environment = {k: v for k, v in os.environ.items() if k != "CHGGEN_MALLOC"} | env
    script = SAMPLING.replace("LEVELS", str(levels))
    out = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[-2] == "True", int(out[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_kept_pages_cut_the_page_faults_of_sampling():
    tuned, short_run = page_faults(10)
    _, long_run = page_faults(40)
    untouched, system_default = page_faults(40, CHGGEN_MALLOC="system")
    assert tuned and not untouched
    assert long_run < 1.5 * short_run, (short_run, long_run)  # freed pages are reused, not faulted in again
    assert 3 * long_run < system_default, (long_run, system_default)
