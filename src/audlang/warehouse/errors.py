"""Database errors → one clear diagnostic naming the table, column or URL at fault (never a password)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from audlang.diagnostics import AudlangError, Diagnostic, shown_url


def reason(error: BaseException) -> str:
    """The first line of the database's own message, any credentials in it masked."""
    return _reason(error)


def _reason(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    text = _message(orig)
    text = text.strip().splitlines()[0] if text.strip() else type(orig).__name__
    return re.sub(r"://[^@/\s]+@", "://***@", text)


def _message(orig) -> str:
    """The database's own message. PyHive wraps Spark's in a Thrift response object with a Java stack."""
    status = getattr(orig.args[0], "status", None) if getattr(orig, "args", None) else None
    message = getattr(status, "errorMessage", None)
    if message:
        message = re.sub(r"^Error running query: (\[\w+\] )?", "", message)
        message = re.sub(r"^\s*org\.apache\.spark\.[\w.]+: ", "", message)
        return "\n".join(line for line in message.splitlines() if line.strip())
    return str(orig)


_MISSING_TABLE = [
    re.compile(r"Table with name (?P<name>[\w.\"]+) does not exist", re.I),  # duckdb
    re.compile(r"no such table: (?P<name>[\w.\"]+)", re.I),  # sqlite
    re.compile(r'relation "(?P<name>[\w.]+)" does not exist', re.I),  # postgresql
    re.compile(r"Table or view not found: (?P<name>[\w.`]+)", re.I),  # spark
    re.compile(r"TABLE_OR_VIEW_NOT_FOUND\].*?`(?P<name>[\w.`]+)`", re.I),
]
_MISSING_COLUMN = [
    re.compile(r'does not have a column named "(?P<name>\w+)"', re.I),  # duckdb
    re.compile(r'Referenced column "(?P<name>\w+)" not found', re.I),
    re.compile(r"no such column: (?P<name>[\w.]+)", re.I),
    re.compile(r'column (?P<name>[\w."]+) does not exist', re.I),
    re.compile(r"UNRESOLVED_COLUMN.*?`(?P<name>[\w.`]+)`", re.I),
    re.compile(r"Binder Error: .*column \"?(?P<name>\w+)\"? not found", re.I),
]


def translate(error: DBAPIError, url: str, model=None) -> AudlangError:
    """A database error raised while evaluating → one diagnostic, naming the table or column and the fix."""
    message = _message(getattr(error, "orig", None) or error)
    for pattern in _MISSING_TABLE:
        m = pattern.search(message)
        if m:
            name = m.group("name").strip('"`')
            logical = _logical_table(model, name)
            fix = (f'; if it has another name, map it: table {logical} from "schema.table"' if logical else "")
            return AudlangError(Diagnostic.sourceless(
                "E404", f"table {name} is missing from the warehouse{fix}", shown_url(url)))
    for pattern in _MISSING_COLUMN:
        m = pattern.search(message)
        if m:
            name = m.group("name").strip('"`').split(".")[-1]
            logical = _logical_column(model, name)
            fix = (f'; if it has another name, map it: table {logical[0]} < {logical[1]} = "actual_column" >'
                   if logical else "")
            return AudlangError(Diagnostic.sourceless(
                "E405", f"column {name} is missing from the warehouse{fix}", shown_url(url)))
    return AudlangError(Diagnostic.sourceless("E406", f"the database refused the query: {_reason(error)}",
                                              shown_url(url)))


def _logical_table(model, physical: str) -> str | None:
    if model is None:
        return None
    for info in model.data_model.tables.values():
        if info.physical.split(".")[-1] == physical.split(".")[-1]:
            return info.name
    return None


def _logical_column(model, physical: str) -> tuple[str, str] | None:
    if model is None:
        return None
    for info in model.data_model.tables.values():
        for logical, column in info.columns.items():
            if column == physical:
                return info.name, logical
    return None


@contextlib.contextmanager
def errors_translated(url: str, model=None) -> Iterator[None]:
    try:
        yield
    except DBAPIError as error:
        raise translate(error, url, model) from None
    except SQLAlchemyError as error:
        raise AudlangError(Diagnostic.sourceless("E406", f"database error: {_reason(error)}", shown_url(url))) from None


