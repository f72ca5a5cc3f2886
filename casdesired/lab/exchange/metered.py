"""A cmdlet's output as the lab's cost model charges it (server time per object returned)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from casdesired.lab.exchange.binding import Obj


class Metered(Iterator[Obj]):
    """A cmdlet's output, charging the cost model's server time for every object it returns.

    Time is charged as objects are consumed (in slices, outside the state lock), and for the
    whole listing when the agent only counts it (``count_by``, see agent_values.counted): counting a
    million mailboxes costs what returning them costs, as it does in a real pipeline.
    """

    SLICE = 1000

    def __init__(
        self, objects: Iterable[Obj], seconds_each: float, sleep: Callable[[float], None]
    ) -> None:
        self._objects = objects
        self._iter = iter(objects)
        self._each = seconds_each
        self._sleep = sleep
        self._owed = 0

    def __next__(self) -> Obj:
        try:
            obj = next(self._iter)
        except StopIteration:
            self._pay()
            raise
        self._owed += 1
        if self._owed >= self.SLICE:
            self._pay()
        return obj

    def _pay(self) -> None:
        if self._owed and self._each > 0:
            self._sleep(self._owed * self._each)
        self._owed = 0

    def count_by(self, prop: str) -> dict[str, int] | None:
        count_by = getattr(self._objects, "count_by", None)
        groups = count_by(prop) if callable(count_by) else None
        if groups is not None and self._each > 0:
            self._sleep(sum(groups.values()) * self._each)
        return groups
