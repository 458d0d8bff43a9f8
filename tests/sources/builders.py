"""Small card datasets written to disk in either layout, for the source and sync-job tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Cards = list[Any] | str | bytes


def a_set(set_id: str, **fields: Any) -> dict[str, Any]:
    record = {"id": set_id, "name": f"Set {set_id}", "series": "Test", "printedTotal": 2, "total": 2,
              "legalities": {"unlimited": "Legal"}, "releaseDate": "2020/01/01",
              "updatedAt": "2020/01/01 10:00:00",
              "images": {"symbol": f"https://img/{set_id}/symbol.png", "logo": f"https://img/{set_id}/logo.png"}}
    record.update(fields)
    return {k: v for k, v in record.items() if v is not ...}


def a_card(set_id: str, number: str, **fields: Any) -> dict[str, Any]:
    record = {"id": f"{set_id}-{number}", "name": f"Card {number}", "supertype": "Pokémon",
              "subtypes": ["Basic"], "hp": "60", "types": ["Fire"], "number": number,
              "artist": "Someone", "rarity": "Common", "legalities": {"unlimited": "Legal"},
              "images": {"small": f"https://img/{set_id}/{number}.png"}}
    record.update(fields)
    return {k: v for k, v in record.items() if v is not ...}


def every_field(table: Any, record_id: str, variant: int) -> dict[str, Any]:
    """A valid record of ``table`` (a declared card table) carrying every declared source field,
    with values that differ from one ``variant`` to the next, and one field no column holds."""
    record: dict[str, Any] = {"id": record_id, "newField": {"variant": variant}}
    for column in table.columns[1:]:
        if column.source is None:
            continue
        kind = int if int in column.source.accepts else column.source.accepts[0]
        name = column.source.name
        record[name] = {str: f"{name} {variant}", int: 10 + variant, list: [f"{name} {variant}"],
                        dict: {"url": f"https://{name}/{variant}"}}[kind]
    for unstored in table.unstored:
        record[unstored.name] = {"variant": variant}
    return record


def _write(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False), encoding="utf-8")


def write_upstream(root: Path, sets: list[Any] | str | bytes, cards: dict[str, Cards],
                   language: str = "en") -> Path:
    """The pokemon-tcg-data layout: sets/<lang>.json and cards/<lang>/<set>.json (bare arrays)."""
    _write(root / "sets" / f"{language}.json", sets)
    (root / "cards" / language).mkdir(parents=True, exist_ok=True)
    for set_id, content in cards.items():
        _write(root / "cards" / language / f"{set_id}.json", content)
    return root


def write_package(root: Path, sets: list[Any], cards: dict[str, Cards]) -> Path:
    """The platform's data package: sets.json and cards/<set>.d/cards.json, {"data": [...]}."""
    by_id = {s["id"]: s for s in sets}
    _write(root / "sets.json", {"data": sets, "page": 1, "pageSize": 250, "count": len(sets)})
    (root / "cards").mkdir(parents=True, exist_ok=True)
    for set_id, content in cards.items():
        if isinstance(content, list):
            content = {"data": [{**card, "set": by_id.get(set_id, {})} for card in content]}
        _write(root / "cards" / f"{set_id}.d" / "cards.json", content)
        (root / "cards" / f"{set_id}.d" / ".keep").touch()
    return root


def run_json(cli: Any, job: str, *args: str) -> tuple[Any, dict[str, Any] | None]:
    """``tcgjobs run JOB --json ARGS`` in-process: (click result, the run's JSON or None)."""
    from tcgjobs.registry import get_job
    from tests.conftest import invoke

    ignore = ["--ignore-deps"] if get_job(job).depends_on else []  # offered only on such jobs
    result = invoke(cli, "run", job, "--json", *ignore, *args)
    return result, (json.loads(result.stdout).get("run") if result.stdout.strip() else None)


def rows(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import sqlite3

    connection = sqlite3.connect(db_path)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def execute(db_path: Path, *statements: str, foreign_keys: bool = True) -> None:
    import sqlite3

    connection = sqlite3.connect(db_path, isolation_level=None)
    try:
        connection.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        for statement in statements:
            connection.execute(statement)
    finally:
        connection.close()
