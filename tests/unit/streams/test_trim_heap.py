"""A worker gives the heap memory it freed back to the OS (streams.inflight.trim_heap, every
RIVERWATCH_WORKER_TRIM_S): glibc keeps freed blocks below a live one for reuse, and the RSS a
container's limit charges stays at its highest point until they are returned."""

import ctypes
import os

import pytest

from riverwatch.core.settings import Settings
from riverwatch.shell.procs import rss_bytes
from riverwatch.streams import inflight
from riverwatch.streams.inflight import trim_heap

MiB = 2**20


def test_freed_heap_memory_goes_back_to_the_os() -> None:
    if inflight._malloc_trim is None:
        pytest.skip("not glibc: no malloc_trim")
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # 120 MiB in 1,000-byte blocks (from the heap, not mmap), each written so its pages are
    # resident; the last one stays allocated, so the freed ones are not at the heap's top,
    # where free() would return them by itself
    blocks = [libc.malloc(1000) for _ in range(120 * 1024)]
    for b in blocks:
        ctypes.memset(b, 1, 1000)
    for b in blocks[:-1]:
        libc.free(b)
    pid = os.getpid()
    before = rss_bytes(pid) or 0
    assert trim_heap() is True
    after = rss_bytes(pid) or 0
    libc.free(blocks[-1])
    assert before - after > 80 * MiB, (before / MiB, after / MiB)


def test_nothing_to_call_off_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inflight, "_malloc_trim", None)
    assert trim_heap() is False


def test_workers_trim_every_30_s_by_default_and_never_at_0() -> None:
    assert Settings().worker_trim_s == 30.0
    assert Settings(worker_trim_s=0).worker_trim_s == 0
    with pytest.raises(ValueError, match="worker_trim_s"):
        Settings(worker_trim_s=-1)
