"""The planner's hot dataclasses get an `__init__` that sets their slots directly (`_quick_init`): the objects are
the ones the generated `__init__` makes, still frozen, with the same defaults and errors."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from orchestrator.core.planner import BusinessView, Candidate, PlannedEnrollment, PlannedMessage, _quick_init


@dataclasses.dataclass(frozen=True, slots=True)
class _Generated:  # what the dataclass makes alone, for comparison
    a: int
    b: str | None = None
    c: frozenset[str] = frozenset()


@_quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Quick:
    a: int
    b: str | None = None
    c: frozenset[str] = frozenset()


def _fields(obj) -> tuple:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


def test_the_quick_init_makes_what_the_generated_one_makes():
    for args, kwargs in (((1,), {}), ((1, "x"), {}), ((1,), {"c": frozenset({"y"})}), ((), {"a": 2, "b": "z"})):
        assert _fields(_Quick(*args, **kwargs)) == _fields(_Generated(*args, **kwargs))
    assert _Quick(1) == _Quick(1, None) and hash(_Quick(1)) == hash(_Quick(1, None)) and _Quick(1) != _Quick(2)
    assert dataclasses.replace(_Quick(1, "x"), b="w") == _Quick(1, "w")
    with pytest.raises(dataclasses.FrozenInstanceError):
        _Quick(1).a = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Quick()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Quick(1, d=3)  # type: ignore[call-arg]
    assert _Quick.__init__ is not _Generated.__init__ and _Quick.__init__.__qualname__ == "_Quick.__init__"


def test_a_class_whose_init_does_more_is_refused():
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        a: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithPostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    for cls in (WithFactory, WithPostInit):
        with pytest.raises(TypeError):
            _quick_init(cls)


def test_the_planners_classes_use_it():
    view = BusinessView(*range(17))
    assert (view.phone_consent, view.relay, view.free_offers_only) == (False, None, False)
    candidate = Candidate(None, "scheduled", dt.date(2026, 12, 1), view, trigger_key="occurrence:x")
    assert candidate.key == "occurrence:x" and candidate.source is None
    message = PlannedMessage(0, "email", "t", "a@b.fr", dt.datetime(2026, 12, 1, tzinfo=dt.UTC), {})
    enrollment = PlannedEnrollment(1, 1, 0, None, "k", "scheduled", "treatment", (message,))
    assert (message.variant, enrollment.ambassador_id, enrollment.moment) == (None, None, None)
    for cls in (BusinessView, Candidate, PlannedMessage, PlannedEnrollment):
        assert cls.__init__.__code__.co_filename == "<string>" and "_set_" in " ".join(cls.__init__.__code__.co_names)
