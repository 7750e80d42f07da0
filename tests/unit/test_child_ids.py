"""Child execution IDs: deterministic, valid UUIDs, and clustered per step (siblings share a
prefix and sort by index, so the B-trees keyed by execution ID keep a batch together)."""

from __future__ import annotations

import uuid

import pytest

from polos import protocol

PARENT = "3b2f7c1e-5d4a-4e8b-9c0d-1a2b3c4d5e6f"


def test_the_same_inputs_name_the_same_child() -> None:
    assert protocol.child_execution_id(PARENT, "reviews", 7) == protocol.child_execution_id(
        PARENT, "reviews", 7
    )


def test_ids_are_version_5_uuids() -> None:
    for index in (0, 1, 4095, protocol.MAX_INT32):
        parsed = uuid.UUID(protocol.child_execution_id(PARENT, "reviews", index))
        assert parsed.version == 5
        assert parsed.variant == uuid.RFC_4122


def test_siblings_share_a_prefix_and_sort_by_index() -> None:
    ids = [protocol.child_execution_id(PARENT, "reviews", i) for i in range(5000)]
    assert len(set(ids)) == 5000
    assert ids == sorted(ids)
    assert {i[:-12] for i in ids} == {ids[0][:-12]}
    assert [int(i[-12:], 16) for i in ids[:3]] == [0, 1, 2]


def test_other_steps_and_parents_get_other_ids() -> None:
    other_parent = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    ids = {
        protocol.child_execution_id(PARENT, "reviews", 0),
        protocol.child_execution_id(PARENT, "reviews2", 0),
        protocol.child_execution_id(other_parent, "reviews", 0),
    }
    assert len(ids) == 3
    # The step key and the index cannot be confused: "a" index 10 is not "a\x0010"'s child 0.
    assert protocol.child_execution_id(PARENT, "a", 10) != protocol.child_execution_id(
        PARENT, "a\x0010", 0
    )


def test_an_index_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        protocol.child_execution_id(PARENT, "reviews", -1)
    with pytest.raises(ValueError, match="out of range"):
        protocol.child_execution_id(PARENT, "reviews", 1 << 48)
