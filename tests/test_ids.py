"""Id runs: what lets a template stand for a batch's event and message ids."""

import pytest

from opencomms import ids


def test_a_batch_and_any_slice_of_it_is_a_run_that_ulid_run_remakes() -> None:
    batch = [ids.MESSAGE_PREFIX + u for u in ids.ulids(3000)]
    for part in (batch, batch[1024:2049], batch[5:6]):
        assert ids.is_run(part)
        assert ids.ulid_run(part[0], len(part)) == part


def test_gaps_other_batches_and_other_shapes_are_not_runs() -> None:
    batch, other = ids.ulids(10), ids.ulids(10)
    assert not ids.is_run(batch[:3] + batch[4:6])  # a gap
    assert not ids.is_run(batch[:5] + other[5:])  # two batches
    assert not ids.is_run([])
    assert not ids.is_run(["m-1", "m-2"])  # not ulids' shape
    assert not ids.is_run(["EV" + batch[0], batch[1]])  # one prefix for all


def test_a_run_cannot_pass_the_end_of_its_batch() -> None:
    last = ids.ulids(1)[0][:-4] + "zzzz"
    with pytest.raises(ValueError, match="end of its batch"):
        ids.ulid_run(last, 2)
