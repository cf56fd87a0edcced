"""Every loader and builder runs with sockets disabled (conventions §7: nothing downloads)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

import paper_repro.data as data
from ._files import write_aliexpress, write_census, write_nyuv2, write_pmtl


class _NoNetwork(Exception):
    pass


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise _NoNetwork("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_everything_offline(no_sockets: None, tmp_path: Path) -> None:
    with pytest.raises(_NoNetwork):
        socket.socket()
    for name, entry in data.DATASETS.items():
        splits = entry.builder(**entry.smoke_kwargs)
        assert min(splits.sizes().values()) > 0, name
        assert entry.description
    data.load_mnist(split="test")
    for name in data.BENCHMARK_NAMES:
        assert len(data.benchmark_problem(name).pareto_front()) > 0
    data.load_nyuv2_mtan(write_nyuv2(tmp_path / "nyu"), "train")
    data.load_aliexpress_csv(write_aliexpress(tmp_path / "a.csv"))
    data.load_pmtl_multimnist(write_pmtl(tmp_path / "m.pickle"))
    data.load_census_income(write_census(tmp_path / "c.data"))
    data.cagrad_toy(torch.zeros(2))
    data.vlmop2_front(10)
