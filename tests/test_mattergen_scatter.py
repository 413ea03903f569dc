"""The pure-torch torch_scatter / torch_sparse stand-ins against plain loops on random data."""

import sys
import types

import pytest
import torch

pure = pytest.importorskip("chggen_mattergen.pure_scatter")


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(7)


def loop_scatter(src, index, dim, size, mean=False):
    src = src.movedim(dim, 0)
    out = torch.zeros((size, *src.shape[1:]), dtype=src.dtype)
    counts = [0] * size
    for row, slot in zip(src, index.tolist()):
        out[slot] += row
        counts[slot] += 1
    if mean:
        for slot, count in enumerate(counts):
            out[slot] = out[slot] / max(count, 1)
    return out.movedim(0, dim)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_scatter_matches_a_loop_including_empty_slots(generator, dim, reduce):
    src = torch.randn(6, 9, 4, generator=generator, dtype=torch.float64)
    index = torch.randint(0, 5, (src.shape[dim],), generator=generator)
    size = 7  # slots 5 and 6 receive nothing
    got = pure.scatter(src, index, dim=dim, dim_size=size, reduce=reduce)
    assert torch.allclose(got, loop_scatter(src, index, dim % 3, size, reduce == "mean"), atol=1e-12)


def test_scatter_add_and_integer_counts(generator):
    index = torch.randint(0, 4, (30,), generator=generator)
    ones = torch.ones_like(index)
    assert torch.equal(pure.scatter(ones, index), torch.bincount(index))  # size from index.max()
    src = torch.randn(30, 3, generator=generator)
    assert torch.allclose(pure.scatter_add(src, index, dim=0),
                          torch.zeros(4, 3).index_add_(0, index, src), atol=1e-6)


def test_segment_coo_sums_runs_of_a_sorted_index(generator):
    index = torch.sort(torch.randint(0, 6, (40,), generator=generator)).values
    src = torch.randn(40, generator=generator, dtype=torch.float64)
    expected = torch.tensor([src[index == k].sum().item() for k in range(8)], dtype=torch.float64)
    assert torch.allclose(pure.segment_coo(src, index, dim_size=8), expected, atol=1e-12)


def test_segment_csr_sums_between_pointers_with_empty_segments(generator):
    src = torch.randint(0, 100, (25,), generator=generator)
    indptr = torch.tensor([0, 3, 3, 10, 18, 18, 22])  # src[22:] lies past the last pointer: ignored
    expected = torch.tensor([int(src[a:b].sum()) for a, b in zip(indptr[:-1].tolist(), indptr[1:].tolist())])
    assert torch.equal(pure.segment_csr(src, indptr), expected)


def test_sparse_row_indexing_stacks_rows_in_column_order(generator):
    rows, cols = torch.randint(0, 6, (50,), generator=generator), torch.randint(0, 6, (50,), generator=generator)
    values = torch.arange(50)  # edge ids, as GemNet stores them; (row, col) pairs repeat
    adj = pure.SparseTensor(row=rows, col=cols, value=values, sparse_sizes=(6, 6))
    index = torch.randint(0, 6, (15,), generator=generator)
    picked = adj[index]
    expected_rows, expected_values = [], []
    for k, i in enumerate(index.tolist()):
        entries = sorted((c, v) for r, c, v in zip(rows.tolist(), cols.tolist(), values.tolist()) if r == i)
        expected_rows += [k] * len(entries)
        expected_values += [v for _, v in entries]
    assert picked.storage.row().tolist() == expected_rows
    assert picked.storage.value().tolist() == expected_values
    assert picked.to("cpu").storage.value().tolist() == expected_values


def test_install_registers_only_what_is_missing(monkeypatch):
    real = types.ModuleType("torch_sparse")
    monkeypatch.setitem(sys.modules, "torch_scatter", None)  # so the test's registration is undone
    monkeypatch.delitem(sys.modules, "torch_scatter")
    monkeypatch.setitem(sys.modules, "torch_sparse", real)  # "compiled package present"
    assert pure.install() == ["torch_scatter"]
    assert sys.modules["torch_sparse"] is real
    assert sys.modules["torch_scatter"].segment_csr is pure.segment_csr
