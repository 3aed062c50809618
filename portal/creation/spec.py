"""What an analyst asks for when creating a data product, and the checks on every field.

Every value of a `ProductSpec` ends up in a dbt file: the name becomes a file name and a dbt
node name, the metadata goes into YAML that dbt renders with Jinja, the SQL into a model that
dbt renders with Jinja. So each field is checked against a strict shape before anything is
written, and each refusal says what is wrong and how to fix it. The SQL's structure is checked
by `portal.creation.sqlguard`; here only what applies to every text field (length, control characters,
Jinja) is checked on it, so a spec that passes `validate_spec` is safe to render on its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portal.auth.identity import PARTY_RE
from portal.errors import InvalidInput

BUILTIN_TYPES = ("CUSTOMER_360", "PRODUCT_PERFORMANCE", "REVENUE_ANALYTICS", "CUSTOM")
UPDATE_FREQUENCIES = ("hourly", "daily", "weekly", "monthly")
MATERIALIZATIONS = ("table", "view", "incremental")

NAME_RE = re.compile(r"^dp_[a-z][a-z0-9_]{2,60}\Z")
# Product columns are lowercase snake_case: both engines, dbt contracts and YAML then agree on
# them without quoting (Trino lowercases names; DuckDB keeps what was typed).
COLUMN_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")
# Owners and consumers are team names or e-mail addresses; nothing that means something to YAML,
# a shell, a path or dbt's selector syntax (`+`, `*`, `:`, `,`, spaces).
# Tags become dbt tags, selectable as `tag:<tag>`: keep them to characters selectors take literally.
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}\Z")
TYPE_RE = re.compile(r"^[A-Z][A-Z0-9_]{1,39}\Z")

MAX_SQL_LENGTH = 20_000
MAX_DESCRIPTION_LENGTH = 10_000
MAX_COLUMN_DESCRIPTION_LENGTH = 2_000
MAX_LIST_ITEMS = {"consumers": 50, "tags": 20, "primary_key": 10}
MAX_COLUMN_DESCRIPTIONS = 500

JINJA_OPENERS = ("{{", "{%", "{#")
# Bidirectional overrides can make text read differently from what it is ("Trojan Source").
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
# Control characters, and lone surrogates: what a file dbt reads (UTF-8 SQL, YAML) cannot hold.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs"})
_LINE_BREAKS = frozenset("\n\r\t")


@dataclass(frozen=True)
class Problem:
    """One refusal: the form field it concerns, what is wrong and how to fix it, and where.

    `position` is (line, column), both counted from 1, inside that field's text.
    """

    field: str
    message: str
    position: tuple[int, int] | None = None


def line_col(text: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of a character offset in `text`."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def text_problems(name: str, text: Any, *, max_length: int, multiline: bool = False) -> list[Problem]:
    """What every free-text field must satisfy: text, capped, printable, and free of Jinja.

    Jinja is refused outright rather than escaped: dbt renders model files and most YAML
    properties with Jinja, so user text containing `{{` would run as code in the build.
    """
    if not isinstance(text, str):
        return [Problem(name, f"{name} must be text, not {type(text).__name__}.")]
    if len(text) > max_length:
        return [
            Problem(
                name,
                f"{name} is {len(text):,} characters long; the limit is {max_length:,}. Shorten it.",
            )
        ]
    problems = []
    bad = _first_unsafe_character(text, multiline)
    if bad is not None:
        char = text[bad]
        problems.append(
            Problem(
                name,
                f"{name} contains U+{ord(char):04X}, {_unsafe_kind(char)}. Delete it (retype the text "
                "if it was pasted).",
                line_col(text, bad),
            )
        )
    opener = _first_jinja(text)
    if opener is not None:
        problems.append(
            Problem(
                name,
                f"{name} contains the Jinja marker `{text[opener : opener + 2]}`. dbt would run it as a "
                "template, so it is not allowed: remove it (write a literal brace pair some other way, "
                "e.g. `{ {`).",
                line_col(text, opener),
            )
        )
    return problems


def _first_unsafe_character(text: str, multiline: bool) -> int | None:
    for index, char in enumerate(text):
        if char in _LINE_BREAKS and multiline:
            continue
        if char in _BIDI_CONTROLS or unicodedata.category(char) in _UNSAFE_CATEGORIES or _noncharacter(char):
            return index
    return None


def _noncharacter(char: str) -> bool:
    """U+FDD0..U+FDEF and the last two code points of every plane: YAML cannot carry them."""
    code = ord(char)
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def _unsafe_kind(char: str) -> str:
    if unicodedata.category(char) == "Cs":
        return "half of a UTF-16 surrogate pair (text broken in copying; dbt cannot read it back)"
    if _noncharacter(char):
        return "a Unicode noncharacter (dbt's YAML cannot carry it)"
    return f"the invisible or control character {unicodedata.name(char, 'unnamed')}"


def _first_jinja(text: str) -> int | None:
    found = [i for i in (text.find(opener) for opener in JINJA_OPENERS) if i >= 0]
    return min(found) if found else None


def _as_tuple(value: Any) -> tuple[Any, ...]:
    # A lone string is one item (an API client sending "team-a" means ["team-a"]), not its characters.
    if isinstance(value, str):
        return (value,)
    return tuple(value or ())


@dataclass(frozen=True)
class ProductSpec:
    """A data product as the form or the API describes it; checked by `validate_spec`."""

    name: str
    description: str
    data_product_type: str
    owner: str
    consumers: Sequence[str] = ()
    update_frequency: str = "daily"
    tags: Sequence[str] = ()
    primary_key: Sequence[str] = ()
    materialization: str = "table"
    sql: str = ""
    column_descriptions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Frozen means frozen: lists become tuples and the mapping a private copy.
        for name in ("consumers", "tags", "primary_key"):
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
        object.__setattr__(self, "column_descriptions", dict(self.column_descriptions or {}))

    @property
    def unique_key(self) -> tuple[str, ...]:
        """The key incremental runs merge on: always the primary key."""
        return tuple(self.primary_key)


def validate_spec(
    spec: ProductSpec, *, extra_types: Iterable[str] = (), existing_names: Iterable[str] = ()
) -> list[Problem]:
    """Every problem with the spec's fields, in form order; empty when the spec may be rendered.

    `extra_types` are product types added by configuration (upper snake case; others are
    ignored). `existing_names` are the models the project already has (compared without case).
    """
    problems = _name_problems(spec.name, existing_names)
    problems += text_problems(
        "description", spec.description, max_length=MAX_DESCRIPTION_LENGTH, multiline=True
    )
    if isinstance(spec.description, str) and not spec.description.strip():
        problems.append(
            Problem("description", "description is empty. Say what the product holds and who it is for.")
        )
    problems += _type_problems(spec.data_product_type, extra_types)
    if spec.owner == "":
        problems.append(
            Problem("owner", "owner is empty. Name the team or person accountable for the product.")
        )
    else:
        problems += _party_problems("owner", [spec.owner])
    problems += _party_problems("consumers", spec.consumers)
    problems += _choice_problems("update_frequency", spec.update_frequency, UPDATE_FREQUENCIES)
    problems += _list_problems(
        "tags", spec.tags, TAG_RE, "lowercase letters, digits, `_` and `-` (e.g. finance)"
    )
    problems += _primary_key_problems(spec.primary_key)
    problems += _choice_problems("materialization", spec.materialization, MATERIALIZATIONS)
    problems += text_problems("sql", spec.sql, max_length=MAX_SQL_LENGTH, multiline=True)
    if isinstance(spec.sql, str) and not spec.sql.strip():
        problems.append(Problem("sql", "sql is empty. Write the SELECT statement that computes the product."))
    problems += _column_description_problems(spec.column_descriptions)
    return problems


def _name_problems(name: Any, existing_names: Iterable[str]) -> list[Problem]:
    problems = text_problems("name", name, max_length=64)
    if problems:
        return problems
    if not NAME_RE.match(name):
        return [Problem("name", _explain_bad_name(name))]
    if name.lower() in {existing.lower() for existing in existing_names}:
        return [
            Problem(
                "name",
                f"`{name}` already exists in the project. Choose another name, or edit the existing product instead.",
            )
        ]
    return []


def _explain_bad_name(name: str) -> str:
    rule = (
        "Names start with `dp_` and a letter, then 2 to 60 lowercase letters, digits or underscores "
        f"(e.g. `{_suggest(name)}`)."
    )
    if not name:
        return f"name is empty. {rule}"
    if "/" in name or "\\" in name or ".." in name:
        return f"name `{name}` contains a path separator or `..`; a name is never a path. {rule}"
    selector = next((c for c in name if c in "+*:@,& "), None)
    if selector is not None:
        shown = "a space" if selector == " " else f"`{selector}`"
        return f"name `{name}` contains {shown}, which dbt's selector syntax would misread. {rule}"
    if not name.startswith("dp_"):
        return f"name `{name}` does not start with `dp_`. {rule}"
    odd = next((c for c in name if not (c.islower() and c.isascii()) and c not in "0123456789_"), None)
    if odd is not None:
        return f"name `{name}` contains `{odd}`; only lowercase letters, digits and underscores are allowed. {rule}"
    return f"name `{name}` has the wrong length or does not continue with a letter after `dp_`. {rule}"


def _suggest(name: str) -> str:
    try:
        return name_from_display(name.removeprefix("dp_"))[:64].rstrip("_")
    except InvalidInput:
        return "dp_customer_orders"


def _type_problems(value: Any, extra_types: Iterable[str]) -> list[Problem]:
    allowed = BUILTIN_TYPES + tuple(t for t in extra_types if isinstance(t, str) and TYPE_RE.match(t))
    return _choice_problems("data_product_type", value, allowed)


def _choice_problems(name: str, value: Any, allowed: Sequence[str]) -> list[Problem]:
    if value in allowed:
        return []
    shown = _shown(value) if isinstance(value, str) else repr(value)[:60]
    return [Problem(name, f"{name} `{shown}` is not one of {', '.join(allowed)}. Pick one of those.")]


def _party_problems(name: str, values: Sequence[Any]) -> list[Problem]:
    return _list_problems(
        name, values, PARTY_RE, "letters, digits, `.`, `_`, `-` and `@` (a team name or an e-mail address)"
    )


def _list_problems(name: str, values: Sequence[Any], pattern: re.Pattern[str], allowed: str) -> list[Problem]:
    limit = MAX_LIST_ITEMS.get(name)
    if limit is not None and len(values) > limit:
        return [Problem(name, f"{name} has {len(values)} entries; the limit is {limit}. Remove some.")]
    problems = []
    seen: set[str] = set()
    for value in values:
        unsafe = text_problems(name, value, max_length=100)  # Jinja and control characters, said as such
        if unsafe:
            problems += unsafe
        elif not pattern.match(value):
            problems.append(
                Problem(name, f"{name} entry `{_shown(value)}` is not allowed: use only {allowed}.")
            )
        elif value in seen:
            problems.append(Problem(name, f"{name} lists `{value}` twice. Remove the repeat."))
        else:
            seen.add(value)
    return problems


def _shown(value: str) -> str:
    """A user value fit to quote in a message: short, single line, no Jinja markers kept intact."""
    short = value if len(value) <= 60 else value[:57] + "..."
    return "".join(c if c.isprintable() else "?" for c in short).replace("{", "(").replace("}", ")")


def _primary_key_problems(columns: Sequence[Any]) -> list[Problem]:
    if not columns:
        return [
            Problem(
                "primary_key",
                "primary_key is empty. Name the column (or columns) that identify a row; it is tested "
                "for uniqueness and incremental runs merge on it.",
            )
        ]
    return _list_problems(
        "primary_key", columns, COLUMN_RE, "lowercase letters, digits and `_`, starting with a letter or `_`"
    )


def _column_description_problems(descriptions: Mapping[Any, Any]) -> list[Problem]:
    if len(descriptions) > MAX_COLUMN_DESCRIPTIONS:
        return [
            Problem(
                "column_descriptions",
                f"{len(descriptions)} column descriptions; the limit is {MAX_COLUMN_DESCRIPTIONS}.",
            )
        ]
    problems = []
    for column, text in descriptions.items():
        if not isinstance(column, str) or not COLUMN_RE.match(column):
            shown = _shown(column) if isinstance(column, str) else repr(column)
            problems.append(
                Problem(
                    "column_descriptions",
                    f"column `{shown}` is not a valid column name: use lowercase letters, digits and `_`.",
                )
            )
            continue
        problems += text_problems(
            f"column_descriptions.{column}", text, max_length=MAX_COLUMN_DESCRIPTION_LENGTH, multiline=True
        )
    return problems


def name_from_display(display: str) -> str:
    """A valid product name from a display name: "My Data Product" -> "dp_my_data_product".

    Accents are dropped, anything else that is not a letter or digit becomes one underscore.
    A name that would start with a digit gets `product_` in front; a very short one gets
    `_product` behind. Raises InvalidInput when the display name has no letters or digits.
    """
    ascii_text = unicodedata.normalize("NFKD", display).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_").removeprefix("dp_")
    if not slug:
        raise InvalidInput(
            f"{display!r} has no letters or digits to build a name from. Type a name with words in it."
        )
    if not slug[0].isalpha():
        slug = "product_" + slug
    # Never cut to fit: a name longer than the limit is refused by validate_spec, saying so,
    # rather than accepted as a shorter name nobody typed.
    if len(slug) < 3:
        slug += "_product"
    return "dp_" + slug
