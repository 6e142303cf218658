"""A sequence whose items are made when they are read (split from monitors.windows): a
closed time window's packed rows, a view of some rows by index."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, overload

T = TypeVar("T")


class Unpacked(Sequence[T]):
    """Packed events read as the events they were: each is unpacked when it is read (every
    pass over them unpacks them again), so only those a reader holds exist at once. Any items
    read through a function: ``Unpacked(index, rows.__getitem__)`` is a view of some rows.

    >>> u = Unpacked(["1", "2", "3"], int)
    >>> len(u), u[1], u[-1], u[:2], list(u), 2 in u
    (3, 2, 3, [1, 2], [1, 2, 3], True)
    """

    __slots__ = ("_items", "_unpack")

    def __init__(self, items: list[Any], unpack: Callable[[Any], T]):
        self._items, self._unpack = items, unpack

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> list[T]: ...
    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self._unpack(e) for e in self._items[i]]
        return self._unpack(self._items[i])

    def __iter__(self) -> Iterator[T]:
        return map(self._unpack, self._items)

    def __repr__(self) -> str:
        return f"Unpacked({list(self)!r})"
