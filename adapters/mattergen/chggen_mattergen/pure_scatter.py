"""Pure-torch stand-ins for the few `torch_scatter` / `torch_sparse` calls MatterGen 1.0.3 makes.

On PyPI both packages are sources only and take 10-20 minutes each to compile. MatterGen uses:

* torch_scatter: `scatter(src, index, dim, dim_size, reduce)` with reduce "sum" or "mean",
  `scatter_add`, `segment_coo(src, index, dim_size)` and `segment_csr(src, indptr)` (sums), always
  with a one-dimensional index along `dim`;
* torch_sparse: `SparseTensor(row, col, value, sparse_sizes)` indexed by a row-index tensor, reading
  the result's `storage.row()` and `storage.value()` (GemNet's triplet construction).

`install()` registers these under the real module names only when the compiled packages are absent,
and must run before MatterGen is imported (which `chggen_mattergen.runtime` does).
"""

from __future__ import annotations

import importlib.util
import sys
import types

import torch
from torch import Tensor

_REDUCTIONS = ("sum", "add", "mean")


def _output_size(index: Tensor, dim_size: int | Tensor | None) -> int:
    if dim_size is not None:
        return int(dim_size)
    return int(index.max()) + 1 if index.numel() else 0


def scatter(src: Tensor, index: Tensor, dim: int = -1, out: Tensor | None = None,
            dim_size: int | None = None, reduce: str = "sum") -> Tensor:
    """Reduce slices of `src` along `dim` into `dim_size` slots named by the 1-D `index`."""
    if reduce not in _REDUCTIONS:
        raise NotImplementedError(f"pure scatter supports reduce in {_REDUCTIONS}, got {reduce!r}")
    if out is not None:
        raise NotImplementedError("pure scatter does not take `out`")
    dim = dim % src.dim()
    if index.dim() != 1 or index.numel() != src.shape[dim]:
        raise NotImplementedError(f"pure scatter needs a 1-D index of length {src.shape[dim]} "
                                  f"along dim {dim}, got shape {tuple(index.shape)}")
    shape = list(src.shape)
    shape[dim] = _output_size(index, dim_size)
    total = torch.zeros(shape, dtype=src.dtype, device=src.device).index_add_(dim, index, src)
    if reduce != "mean":
        return total
    counts = torch.zeros(shape[dim], dtype=src.dtype, device=src.device)
    counts.index_add_(0, index, torch.ones_like(index, dtype=src.dtype)).clamp_(min=1)
    counts = counts.view([-1 if d == dim else 1 for d in range(src.dim())])
    if src.is_floating_point():
        return total / counts
    return torch.div(total, counts, rounding_mode="floor")


def scatter_add(src: Tensor, index: Tensor, dim: int = -1, out: Tensor | None = None,
                dim_size: int | None = None) -> Tensor:
    return scatter(src, index, dim, out, dim_size, reduce="sum")


def segment_coo(src: Tensor, index: Tensor, out: Tensor | None = None, dim_size: int | None = None,
                reduce: str = "sum") -> Tensor:
    """Sum of `src` over runs of a sorted 1-D `index` (along the first dimension)."""
    if reduce not in ("sum", "add"):
        raise NotImplementedError(f"pure segment_coo supports only sums, got {reduce!r}")
    return scatter(src, index, 0, out, dim_size, reduce="sum")


def segment_csr(src: Tensor, indptr: Tensor, out: Tensor | None = None, reduce: str = "sum") -> Tensor:
    """out[i] = sum of src[indptr[i]:indptr[i+1]] along the first dimension (1-D `indptr`)."""
    if reduce not in ("sum", "add"):
        raise NotImplementedError(f"pure segment_csr supports only sums, got {reduce!r}")
    if indptr.dim() != 1:
        raise NotImplementedError("pure segment_csr needs a 1-D indptr")
    positions = torch.arange(int(indptr[0]), int(indptr[-1]), device=src.device)
    segment = torch.searchsorted(indptr[1:].contiguous(), positions, right=True)
    return scatter(src[positions], segment, 0, out, indptr.numel() - 1, reduce="sum")


class _Storage:
    """The two read-outs GemNet takes from a SparseTensor's storage."""

    def __init__(self, row: Tensor, col: Tensor, value: Tensor) -> None:
        self._row, self._col, self._value = row, col, value

    def row(self) -> Tensor:
        return self._row

    def col(self) -> Tensor:
        return self._col

    def value(self) -> Tensor:
        return self._value


class SparseTensor:
    """A COO matrix kept sorted by (row, col) like torch_sparse's, supporting `adj[row_index]`.

    `adj[idx]` stacks row idx[k] of `adj` as row k of the result, each row's entries in column order;
    entries with the same (row, col) keep their input order.
    """

    def __init__(self, row: Tensor, col: Tensor, value: Tensor | None = None,
                 sparse_sizes: tuple[int, int] | None = None) -> None:
        rows = int(sparse_sizes[0]) if sparse_sizes is not None else int(row.max()) + 1
        cols = int(sparse_sizes[1]) if sparse_sizes is not None else int(col.max()) + 1
        value = value if value is not None else torch.ones(row.numel(), device=row.device)
        order = torch.sort(row * cols + col, stable=True).indices
        self.sparse_sizes = (rows, cols)
        self.storage = _Storage(row[order], col[order], value[order])
        self._rowptr = torch.zeros(rows + 1, dtype=torch.long, device=row.device)
        self._rowptr[1:] = torch.cumsum(torch.bincount(self.storage.row(), minlength=rows), 0)

    def __getitem__(self, index: Tensor) -> "SparseTensor":
        if not isinstance(index, Tensor) or index.dim() != 1 or index.dtype != torch.long:
            raise NotImplementedError("pure SparseTensor supports indexing by a 1-D long tensor only")
        starts, ends = self._rowptr[index], self._rowptr[index + 1]
        counts = ends - starts
        new_row = torch.repeat_interleave(torch.arange(index.numel(), device=index.device), counts)
        first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        picked = torch.repeat_interleave(starts, counts) + torch.arange(new_row.numel(),
                                                                        device=index.device) - first
        result = object.__new__(SparseTensor)
        result.sparse_sizes = (index.numel(), self.sparse_sizes[1])
        result.storage = _Storage(new_row, self.storage.col()[picked], self.storage.value()[picked])
        result._rowptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        return result

    def to(self, device: torch.device | str) -> "SparseTensor":
        result = object.__new__(SparseTensor)
        result.sparse_sizes = self.sparse_sizes
        result.storage = _Storage(*(t.to(device) for t in (self.storage.row(), self.storage.col(),
                                                           self.storage.value())))
        result._rowptr = self._rowptr.to(device)
        return result


def _module(name: str, **members: object) -> types.ModuleType:
    module = types.ModuleType(name, f"chggen_mattergen.pure_scatter standing in for {name}")
    module.__dict__.update(members)
    return module


def install() -> list[str]:
    """Register the stand-ins for whichever of torch_scatter / torch_sparse is not installed.

    Returns the names registered (empty when both compiled packages are present)."""
    stand_ins = {
        "torch_scatter": dict(scatter=scatter, scatter_add=scatter_add, segment_coo=segment_coo,
                              segment_csr=segment_csr),
        "torch_sparse": dict(SparseTensor=SparseTensor),
    }
    registered = []
    for name, members in stand_ins.items():
        if name in sys.modules or importlib.util.find_spec(name) is not None:
            continue
        sys.modules[name] = _module(name, **members)
        registered.append(name)
    return registered
