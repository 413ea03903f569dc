"""A score-model proxy that counts calls and adds up the wall time spent inside `score`
(shared by the benchmark scripts; run them from the repository root as `python benchmarks/X.py`)."""

import time


class TimedModel:
    """Counts score calls and the wall time spent inside them; passes everything else through."""

    def __init__(self, inner):
        self.inner, self.noise_process, self.elements = inner, inner.noise_process, inner.elements
        self.calls, self.seconds = 0, 0.0

    def score(self, batch, level):
        start = time.perf_counter()
        out = self.inner.score(batch, level)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out

    def to(self, device):
        return self
