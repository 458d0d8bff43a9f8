"""The card tables, declared once: every column of ``pokemon_card_sets`` and ``pokemon_cards``.

One :class:`CardColumn` per column says all that tcgjobs knows about it: its SQLite and
PostgreSQL types and nullability, how the sync fills it from which source field and which
values that field may hold, how replication carries it over (or that it does not), and whether
it is the platform's own column or one tcgjobs added. Every other form is derived from
:data:`POKEMON_CARD_SETS` and :data:`POKEMON_CARDS`:

* the SQLite DDL of migration 1 and the columns of migration 2 (:mod:`tcgjobs.db.cards`);
* the sync's rows, statements and known fields (:mod:`tcgjobs.sources.rows`) and the checks
  of source records (:mod:`tcgjobs.sources.validate`);
* validate-data-integrity's required-field and JSON-column checks;
* the PostgreSQL DDL and replication's columns and conversions
  (:mod:`tcgjobs.services.replication.schema`, :mod:`tcgjobs.services.replication.pgrows`).

Columns are listed in the platform's order (its SQLite DDL; init.sql for the columns only
PostgreSQL has), the columns tcgjobs added (migration 2) last.

**Values a PostgreSQL column cannot hold.** One rule for every typed column, declared by its
kind (:data:`PG_KINDS`): the SQLite row keeps the source value as the platform's APIs expect (a
set's ``releaseDate`` may be any string, a name may hold a NUL character); validate-data-integrity
reports each such value as a warning naming its set, card and column; replication writes what
the column can hold instead (:attr:`PgKindRule.instead`: NULL for a date that is not one, the
text without its NUL characters, ...) and reports it per table with examples, and the run
succeeds. A row is skipped only when its identity is unusable (its key, or a card's set, cannot
be replicated). ``TCGJOBS_STRICT_VALUES`` turns these warnings into failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal


class Encoding(Enum):
    """How the sync turns a source record into the column's SQLite value: the original cron
    path's encodings, which the platform's APIs read."""

    VALUE = "the field's value as it is (text or integer); NULL when absent"
    TEXT = "the field's value as text (4 → '4'); NULL when absent"
    HP = "parseInt(hp, 10) || null: the integer of the leading digits; NULL for none or 0"
    JSON_ARRAY = "compact JSON; '[]' when the field is absent, null or empty"
    JSON_OBJECT = "compact JSON; '{}' when the field is absent, null or empty"
    JSON_OR_NULL = "compact JSON; NULL when the field is absent or null"
    MARKET_URL = "the market object's url; the stored URL is kept when the layout has no object"
    CARD_FILE_SET = "the id of the set whose card file holds the record (not card.set.id)"
    EXTRA = "compact JSON object of the record's fields that have no column; NULL when none"
    NOW_ON_UPDATE = ("not in the row: the default on insert, the current time on every update "
                     "(by the sync in SQLite, by replication in PostgreSQL)")


#: Encodings whose SQLite text is JSON.
JSON_ENCODINGS = frozenset({Encoding.JSON_ARRAY, Encoding.JSON_OBJECT, Encoding.JSON_OR_NULL,
                            Encoding.EXTRA})

#: What a column holds in PostgreSQL, which also says how replication converts the SQLite value:
#: ``text`` verbatim; ``int`` an integer in INTEGER range; ``text[]`` a JSON array of strings;
#: ``evolves_from`` plain text (or the seed script's JSON forms) as a one-element array;
#: ``jsonb`` any JSON; ``date`` ``YYYY/MM/DD``; ``timestamp`` ``YYYY/MM/DD HH:MM:SS``.
PgKind = Literal["text", "int", "text[]", "evolves_from", "jsonb", "date", "timestamp"]



@dataclass(frozen=True)
class PgKindRule:
    """A PostgreSQL kind: its type (as the platform's init.sql writes it), the SQLite values a
    column of that kind holds as they are, and what replication writes instead of any other
    value (in a NOT NULL column, ``not_null_instead`` where ``instead`` would be NULL; a kind
    without it skips the row). :mod:`tcgjobs.services.replication.pgrows` implements each rule;
    a primary key is never replaced: its row is skipped."""

    type: str
    holds: str
    instead: str
    not_null_instead: str | None = None


_NOT_TEXT = "NULL for a BLOB"
PG_KINDS: dict[str, PgKindRule] = {
    "text": PgKindRule(
        "TEXT", "UTF-8 text without NUL characters",
        f"the text without its NUL characters, bytes that are not UTF-8 as U+FFFD; {_NOT_TEXT}",
        "'' for a BLOB"),
    "int": PgKindRule("INTEGER", "an integer from -2^31 to 2^31 - 1", "NULL"),
    "text[]": PgKindRule(
        "TEXT[]", "a JSON array of strings (or nulls) without NUL characters",
        "the array without the NUL characters of its strings; NULL for anything else", "{}"),
    "evolves_from": PgKindRule(
        "TEXT[]", "plain text, or the seed script's JSON text or array of strings",
        "the text without its NUL characters, bytes that are not UTF-8 as U+FFFD; "
        f"{_NOT_TEXT}", "{}"),
    "jsonb": PgKindRule(
        "JSONB", "JSON PostgreSQL accepts: valid, no NaN or Infinity, numbers within numeric's "
        "range, no \\u0000, not nested too deeply",
        "the value without the NUL characters of its strings and keys; NULL for anything else"),
    "date": PgKindRule("DATE", "a YYYY/MM/DD date", "NULL"),
    "timestamp": PgKindRule("TIMESTAMP", "a YYYY/MM/DD HH:MM:SS timestamp", "NULL"),
}

#: The PostgreSQL type of each kind, as the platform's init.sql writes it.
PG_TYPES: dict[str, str] = {kind: rule.type for kind, rule in PG_KINDS.items()}

STR, INT, LIST, DICT = (str,), (int,), (list,), (dict,)
STR_OR_INT = (str, int)


@dataclass(frozen=True)
class SourceField:
    """A field of the source records (camelCase) and the values the sync accepts in it.

    ``accepts`` are exact JSON types (what ``json.loads`` produces: ``bool`` is never an
    integer), in the order messages name them; null is accepted unless ``required``. A
    ``non_empty`` field must not be the empty string either.
    """

    name: str
    accepts: tuple[type, ...]
    required: bool = False
    non_empty: bool = False


@dataclass(frozen=True)
class CardColumn:
    """One column of a card table (see the module docstring).

    ``sqlite`` / ``pg``: the SQLite type and the PostgreSQL kind (:data:`PgKind`); None when
    that database lacks the column. ``sync``: how the sync writes it; None when it never does
    (SQLite's default on insert). ``replicated``: replication copies it from SQLite (by its
    ``pg`` kind); the other PostgreSQL columns are left to the platform. ``not_null`` holds in
    both databases; a primary key is NOT NULL in PostgreSQL too (SQLite lets a TEXT PRIMARY KEY
    hold NULL). ``added``: tcgjobs' column (migration 2 in SQLite, added to PostgreSQL by
    replication); otherwise the platform's own (migration 1, init.sql).
    """

    name: str
    sqlite: str | None
    pg: PgKind | None
    sync: Encoding | None = None
    source: SourceField | None = None
    not_null: bool = False
    primary_key: bool = False
    references: str | None = None
    indexed: bool = False
    sqlite_default: str | None = None
    pg_default: str | None = None
    replicated: bool = True
    added: bool = False

    def __post_init__(self) -> None:
        if self.replicated and (self.sqlite is None or self.pg is None or not self.in_row):
            raise ValueError(f"{self.name}: replication copies only columns the sync writes "
                             "into both databases")
        if self.source is not None and self.sync is None:
            raise ValueError(f"{self.name}: a source field without an encoding")

    @property
    def in_row(self) -> bool:
        """Whether the sync's rows carry the column (it is written from the source record)."""
        return self.sync is not None and self.sync is not Encoding.NOW_ON_UPDATE

    @property
    def holds_json(self) -> bool:
        """Whether its SQLite text is JSON."""
        return self.sync in JSON_ENCODINGS

    @property
    def pg_not_null(self) -> bool:
        return self.not_null or self.primary_key

    @property
    def pg_rule(self) -> PgKindRule:
        """What the PostgreSQL column holds, and what replication writes instead of any other
        value. Raises ValueError for a SQLite-only column."""
        if self.pg is None:
            raise ValueError(f"{self.name} is not a PostgreSQL column")
        return PG_KINDS[self.pg]

    @property
    def pg_type(self) -> str:
        """The PostgreSQL type as DDL writes it. Raises ValueError for a SQLite-only column."""
        if self.pg is None:
            raise ValueError(f"{self.name} is not a PostgreSQL column")
        return PG_TYPES[self.pg]


@dataclass(frozen=True)
class CardTable:
    """A card table: its columns in order, what its rows are called in metrics (``label``) and
    the source fields the sync accepts but does not store (``unstored``)."""

    name: str
    label: str
    columns: tuple[CardColumn, ...]
    unstored: tuple[SourceField, ...] = field(default=())

    def __post_init__(self) -> None:
        keys = [column for column in self.columns if column.primary_key]
        if len(keys) != 1 or keys[0] is not self.columns[0]:
            raise ValueError(f"{self.name}: the first column, and only it, is the primary key")

    @property
    def key(self) -> CardColumn:
        """The primary key column (always the first: rows begin with their id)."""
        return self.columns[0]

    def column(self, name: str) -> CardColumn:
        """The column called ``name``. Raises KeyError."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name}")


def index_ddl(table: CardTable) -> dict[str, str]:
    """The platform's indexes of a card table, name → CREATE INDEX (``idx_pokemon_cards_set_id``
    on ``set_id``); the same statement creates each in SQLite and in PostgreSQL."""
    return {f"idx_{table.name}_{column.name}": f"CREATE INDEX IF NOT EXISTS idx_{table.name}_"
            f"{column.name} ON {table.name}({column.name})"
            for column in table.columns if column.indexed}


_NOW = "(datetime('now'))"  # SQLite's default of the platform's timestamps
_PG_NOW = "CURRENT_TIMESTAMP"

POKEMON_CARD_SETS = CardTable("pokemon_card_sets", "sets", (
    CardColumn("id", "TEXT", "text", Encoding.VALUE,
               SourceField("id", STR, required=True), primary_key=True),
    CardColumn("name", "TEXT", "text", Encoding.VALUE,
               SourceField("name", STR, required=True, non_empty=True), not_null=True),
    CardColumn("series", "TEXT", "text", Encoding.VALUE,
               SourceField("series", STR, required=True), not_null=True),
    CardColumn("printed_total", "INTEGER", "int", Encoding.VALUE,
               SourceField("printedTotal", INT)),
    CardColumn("total", "INTEGER", "int", Encoding.VALUE, SourceField("total", INT)),
    CardColumn("legalities", "TEXT", "jsonb", Encoding.JSON_OR_NULL,
               SourceField("legalities", DICT)),
    CardColumn("ptcgo_code", "TEXT", "text", Encoding.VALUE, SourceField("ptcgoCode", STR)),
    # Any string: replication writes NULL for what is not a date (see the module docstring).
    CardColumn("release_date", "TEXT", "date", Encoding.VALUE, SourceField("releaseDate", STR)),
    CardColumn("updated_at", "TEXT", "timestamp", Encoding.VALUE,
               SourceField("updatedAt", STR)),
    CardColumn("images", "TEXT", "jsonb", Encoding.JSON_OR_NULL, SourceField("images", DICT)),
    CardColumn("created_at", "TEXT", "timestamp", sqlite_default=_NOW, pg_default=_PG_NOW,
               replicated=False),
    CardColumn("extra", "TEXT", "jsonb", Encoding.EXTRA, added=True),
))

POKEMON_CARDS = CardTable("pokemon_cards", "cards", (
    CardColumn("id", "TEXT", "text", Encoding.VALUE,
               SourceField("id", STR, required=True), primary_key=True),
    CardColumn("name", "TEXT", "text", Encoding.VALUE,
               SourceField("name", STR, required=True, non_empty=True), not_null=True),
    CardColumn("supertype", "TEXT", "text", Encoding.VALUE,
               SourceField("supertype", STR, required=True, non_empty=True), not_null=True),
    CardColumn("subtypes", "TEXT", "text[]", Encoding.JSON_ARRAY,
               SourceField("subtypes", LIST), not_null=True),
    CardColumn("hp", "INTEGER", "int", Encoding.HP, SourceField("hp", STR_OR_INT)),
    CardColumn("types", "TEXT", "text[]", Encoding.JSON_ARRAY,
               SourceField("types", LIST), not_null=True),
    CardColumn("evolves_from", "TEXT", "evolves_from", Encoding.VALUE,
               SourceField("evolvesFrom", STR)),
    CardColumn("evolves_to", "TEXT", "text[]", Encoding.JSON_ARRAY,
               SourceField("evolvesTo", LIST)),
    CardColumn("rules", "TEXT", "text[]", Encoding.JSON_ARRAY, SourceField("rules", LIST)),
    CardColumn("abilities", "TEXT", "jsonb", Encoding.JSON_ARRAY,
               SourceField("abilities", LIST)),
    CardColumn("attacks", "TEXT", "jsonb", Encoding.JSON_ARRAY, SourceField("attacks", LIST)),
    CardColumn("weaknesses", "TEXT", "jsonb", Encoding.JSON_ARRAY,
               SourceField("weaknesses", LIST)),
    CardColumn("retreat_cost", "TEXT", "jsonb", Encoding.JSON_ARRAY,
               SourceField("retreatCost", LIST)),
    CardColumn("converted_retreat_cost", "INTEGER", "int", Encoding.VALUE,
               SourceField("convertedRetreatCost", INT)),
    CardColumn("set_id", "TEXT", "text", Encoding.CARD_FILE_SET, not_null=True,
               references="pokemon_card_sets(id)", indexed=True),
    CardColumn("number", "TEXT", "text", Encoding.TEXT,
               SourceField("number", STR_OR_INT, required=True, non_empty=True), not_null=True),
    CardColumn("artist", "TEXT", "text", Encoding.VALUE, SourceField("artist", STR)),
    CardColumn("rarity", "TEXT", "text", Encoding.VALUE, SourceField("rarity", STR)),
    CardColumn("flavor_text", "TEXT", "text", Encoding.VALUE, SourceField("flavorText", STR)),
    CardColumn("national_pokedex_numbers", "TEXT", "jsonb", Encoding.JSON_ARRAY,
               SourceField("nationalPokedexNumbers", LIST)),
    CardColumn("legalities", "TEXT", "jsonb", Encoding.JSON_OBJECT,
               SourceField("legalities", DICT)),
    CardColumn("images", "TEXT", "jsonb", Encoding.JSON_OBJECT, SourceField("images", DICT)),
    CardColumn("tcgplayer_url", "TEXT", "text", Encoding.MARKET_URL,
               SourceField("tcgplayer", DICT)),
    CardColumn("tcgplayer_updated_at", None, "date", replicated=False),
    CardColumn("tcgplayer_prices", None, "jsonb", replicated=False),
    CardColumn("cardmarket_url", "TEXT", "text", Encoding.MARKET_URL,
               SourceField("cardmarket", DICT)),
    CardColumn("cardmarket_updated_at", None, "date", replicated=False),
    CardColumn("cardmarket_prices", None, "jsonb", replicated=False),
    CardColumn("created_at", "TEXT", "timestamp", sqlite_default=_NOW, pg_default=_PG_NOW,
               replicated=False),
    CardColumn("updated_at", "TEXT", "timestamp", Encoding.NOW_ON_UPDATE,
               sqlite_default=_NOW, pg_default=_PG_NOW, replicated=False),
    CardColumn("resistances", "TEXT", "jsonb", Encoding.JSON_ARRAY,
               SourceField("resistances", LIST), added=True),
    CardColumn("level", "TEXT", "text", Encoding.TEXT,
               SourceField("level", STR_OR_INT), added=True),
    CardColumn("ancient_trait", "TEXT", "jsonb", Encoding.JSON_OR_NULL,
               SourceField("ancientTrait", DICT), added=True),
    CardColumn("regulation_mark", "TEXT", "text", Encoding.VALUE,
               SourceField("regulationMark", STR), added=True),
    CardColumn("extra", "TEXT", "jsonb", Encoding.EXTRA, added=True),
), unstored=(SourceField("set", DICT),))  # the embedded set object duplicates the set's row

#: Both card tables, sets first (cards reference them).
CARD_TABLES = (POKEMON_CARD_SETS, POKEMON_CARDS)
