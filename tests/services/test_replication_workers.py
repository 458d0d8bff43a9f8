"""Mapping on two processes: the same rows as one process, failures reported, the child reaped."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from peewee import SqliteDatabase

from tcgjobs.services.replication import source, workers
from tcgjobs.services.replication.pgrows import CARDS, SETS
from tcgjobs.services.replication.source import source_rows
from tests.support.replication import a_card_row, a_set_row, write_card_db

pytestmark = pytest.mark.skipif(not workers.available(), reason="needs fork and two CPUs")


def _square(part: Sequence[int]) -> Iterator[tuple[int, int]]:
    for value in part:
        yield value, os.getpid()


def test_the_child_maps_its_items_and_this_process_those_it_reads_after_the_fork():
    results = list(workers.split_map(range(3000), lambda: range(3000, 5000), _square))

    assert sorted(value for value, _ in results) == list(range(5000))
    assert {pid for value, pid in results if value >= 3000} == {os.getpid()}
    assert os.getpid() not in {pid for value, pid in results if value < 3000}


def test_the_childs_batches_are_passed_on_while_this_process_still_maps(tmp_path: Path):
    finished = tmp_path / "child-finished"

    def work(part: Sequence[int]) -> Iterator[int]:
        for value in part:
            if value == 3500:  # this process waits here until the child has mapped everything
                for _ in range(1000):
                    if finished.exists():
                        break
                    time.sleep(0.01)
            yield value
        if part[0] == 0:
            finished.touch()

    results = list(workers.split_map(range(3000), lambda: range(3000, 5000), work))

    first_from_child = next(i for i, value in enumerate(results) if value < 3000)
    assert first_from_child < results.index(3500 + 2 * workers.POLL_EVERY)
    assert sorted(results) == list(range(5000))


def _fail_in_child(part: Sequence[int]) -> Iterator[int]:
    if part[0] == 0:
        raise ValueError("row 7 is broken")
    yield from part


def test_a_failing_child_raises_with_its_reason():
    with pytest.raises(workers.WorkerFailed, match="ValueError: row 7 is broken"):
        list(workers.split_map(range(5), lambda: range(5, 10), _fail_in_child))


def _child_writing_its_pid(pid_file: Path):
    def work(part: Sequence[int]) -> Iterator[int]:
        if part[0] == 0:
            pid_file.write_text(str(os.getpid()))
            time.sleep(600)
        yield from part

    return work


def _wait_for(path: Path) -> int:
    for _ in range(500):  # until the child has started
        if path.exists() and path.read_text():
            break
        time.sleep(0.01)
    return int(path.read_text())


def test_stopping_early_kills_and_reaps_the_child(tmp_path: Path):
    pid_file = tmp_path / "child.pid"
    mapped = workers.split_map(range(5), lambda: range(5, 10), _child_writing_its_pid(pid_file))
    assert next(mapped) == 5
    child = _wait_for(pid_file)
    mapped.close()

    with pytest.raises(ProcessLookupError):  # killed and reaped: no such process any more
        os.kill(child, 0)


def test_a_failure_reading_this_process_items_kills_the_child_and_is_raised(tmp_path: Path):
    pid_file = tmp_path / "child.pid"

    def own_items() -> range:
        _wait_for(pid_file)
        raise RuntimeError("cannot read the rest")

    with pytest.raises(RuntimeError, match="cannot read the rest"):
        next(workers.split_map(range(5), own_items, _child_writing_its_pid(pid_file)))
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def _rows(db_path: Path, monkeypatch, parallel: bool, table=CARDS) -> list[source.SourceRow]:
    monkeypatch.setattr(source, "PARALLEL_MIN_ROWS", 10 if parallel else 10**9)
    calls = []
    real = workers.split_map
    monkeypatch.setattr(workers, "split_map", lambda *a: calls.append(1) or real(*a))
    db = SqliteDatabase(db_path)
    try:
        with db.atomic():
            rows = list(source_rows(db, table))
    finally:
        db.close()
    assert bool(calls) == parallel
    return rows


def test_two_processes_map_exactly_what_one_does(env, monkeypatch):
    path = Path(env["DATABASE_PATH"])
    cards = [a_card_row("swshp", str(n), name=f"Card {n} é\t\\", hp=None if n % 7 else n)
             for n in range(1, 60)]
    cards.append(a_card_row("swshp", "BAD", attacks="[{not json"))
    cards.append(a_card_row("swshp", "N\x00UL"))  # a key PostgreSQL cannot hold: skipped
    write_card_db(path, [a_set_row("swshp")], cards)

    serial = _rows(path, monkeypatch, parallel=False)
    parallel = _rows(path, monkeypatch, parallel=True)

    assert len(serial) == 61 and sorted(parallel) == sorted(serial)
    assert [r.coerced for r in parallel if r.coerced] == [(
        "attacks is not valid JSON (Expecting property name enclosed in double quotes: line 1 "
        "column 3 (char 2)) (NULL written)",)]
    assert [r.reason for r in parallel if r.reason] == [
        "id contains a NUL character, which PostgreSQL text cannot store"]


def test_an_id_repeated_across_the_parts_is_skipped_once_as_a_duplicate(tmp_path, monkeypatch):
    path = tmp_path / "no-primary-key.sqlite3"
    db = SqliteDatabase(path)
    columns = ", ".join(f"{name} TEXT" for name in SETS.names)
    db.execute_sql(f"CREATE TABLE pokemon_card_sets ({columns})")  # no primary key: ids may repeat
    ids = [f"set{n}" for n in range(20)] + ["set3"]
    for key in ids:
        row = a_set_row(key)
        db.execute_sql(f"INSERT INTO pokemon_card_sets ({', '.join(SETS.names)}) VALUES "
                       f"({', '.join('?' * len(SETS.names))})", [row.get(n) for n in SETS.names])
    db.close()

    for parallel in (False, True):
        rows = _rows(path, monkeypatch, parallel, table=SETS)
        assert sorted(r.id for r in rows) == sorted(ids)
        assert [r.id for r in rows if r.reason == "duplicate id"] == ["set3"]


@pytest.mark.parametrize("blob_in", ["the child's rows", "this process's rows"])
def test_a_blob_before_or_after_the_fork_is_replaced_in_its_row_only(env, monkeypatch, blob_in):
    path = Path(env["DATABASE_PATH"])
    write_card_db(path, [a_set_row("swshp")], [a_card_row("swshp", str(n)) for n in range(1, 41)])
    blob_id = "swshp-1" if blob_in == "the child's rows" else "swshp-40"  # read first / last
    db = SqliteDatabase(path)
    db.execute_sql("UPDATE pokemon_cards SET flavor_text = x'00ff' WHERE id = ?", (blob_id,))
    monkeypatch.setattr(source, "PARALLEL_MIN_ROWS", 10)
    try:
        with db.atomic():
            rows = list(source_rows(db, CARDS))
    finally:
        db.close()

    assert sorted(r.id for r in rows) == sorted(f"swshp-{n}" for n in range(1, 41))
    assert [r.reason for r in rows if r.reason] == []
    assert [(r.id, r.coerced) for r in rows if r.coerced] == [
        (blob_id, ("flavor_text is a BLOB, not text (NULL written)",))]
