"""Identifier normalization, in Python and in SQL, giving the same answer.

Destinations send identifiers normalized: a customer_id trimmed, an email
trimmed and lower-cased (and shaped like ``a@b.c``), a phone in E.164. The
Python functions here are the reference (and what ``audlang.destinations``
re-exports); ``email_sql``, ``phone_sql`` and ``customer_id_sql`` build the same
normalization as a SQLAlchemy Core expression, so the database can compute a
sync's delta without customer rows coming into Python. Both return NULL/None
exactly when the identifier is unusable. The tests compare the two on DuckDB,
SQLite, PostgreSQL and Spark SQL over edge cases and generated text.

To be computable the same way on every engine, the definitions are ASCII-exact:

- whitespace is ``" \\t\\n\\r\\f\\v"`` only (no Unicode spaces: a no-break space
  is kept, and makes an email unusable);
- digits are ``0-9`` only, letters (which make a phone unusable) ``A-Za-z`` only;
- an email is lower-cased with Python's ``str.lower()`` here and with the
  engine's ``lower()`` in SQL: the same for ASCII; for other letters the engine
  decides (SQLite lowers ASCII only, PostgreSQL follows the database's
  LC_CTYPE, DuckDB and Spark lower Unicode letters);
- a value that is not text is taken as its text (``str(value)``, ``CAST(… AS
  VARCHAR)``): integers (a phone stored as BIGINT) give the same text
  everywhere; floats and booleans are spelled differently by each engine and
  are not supported.

The ad platforms take identifiers hashed: ``hash_identifier`` and ``hashed_sql``
give the SHA-256 hex (lower case) of a normalized form (``HASH_FORMS``: the email;
the phone in E.164; the phone's E.164 digits without the ``+``, as Meta writes
it), NULL/None when the identifier is unusable. In SQL the hash is computed in
the warehouse, so no plain identifier of those destinations leaves it.

May import SQLAlchemy, the standard library and ``audlang.compile.dialects``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Union

from sqlalchemy import Integer, String, types
from sqlalchemy.sql import ClauseElement, ColumnElement, expression, functions

from audlang.compile.dialects import regexp_full_match, regexp_replace_all, sha256_hex, trim_chars

#: What counts as whitespace around (and, for emails, inside) an identifier.
WHITESPACE = " \t\n\r\f\v"
_NOT_SPACE_OR_AT = f"[^@{WHITESPACE}]"
#: An email after trimming and lower-casing: no whitespace, one ``@``, a dot after it.
EMAIL_PATTERN = f"{_NOT_SPACE_OR_AT}+@{_NOT_SPACE_OR_AT}+[.]{_NOT_SPACE_OR_AT}+"
_NO_LETTERS_PATTERN = "[^A-Za-z]*"
_NOT_DIGIT_PATTERN = "[^0-9]"

_EMAIL = re.compile(EMAIL_PATTERN)
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_LETTER = re.compile(r"[A-Za-z]")
_NOT_DIGIT = re.compile(_NOT_DIGIT_PATTERN)


# ------------------------------------------------------------------ the Python reference


def normalize_email(value: object) -> str | None:
    """Trimmed and lower-cased; None unless it looks like ``a@b.c`` (one ``@``, a dot after it, no
    whitespace)."""
    if value is None:
        return None
    text = str(value).strip(WHITESPACE).lower()
    return text if _EMAIL.fullmatch(text) else None


def normalize_phone(value: object, default_country: str = "1") -> str | None:
    """E.164: ``+`` and 8–15 digits, the first not 0. A number written with ``+`` or ``00`` carries its
    country code; without one, a 10-digit number (first digit 2–9), or 11 digits starting with 1, is
    taken as North American when ``default_country`` is "1" (any other default country makes them
    unusable). Anything with a letter is unusable; other characters are ignored."""
    if value is None:
        return None
    if isinstance(value, str) and _E164.fullmatch(value):
        return value  # already E.164: the common case, kept fast
    text = str(value).strip(WHITESPACE)
    if not text or _LETTER.search(text):
        return None
    international = text.startswith("+") or text.startswith("00")
    digits = _NOT_DIGIT.sub("", text)
    if text.startswith("00"):
        digits = digits[2:]
    if not international:
        if len(digits) == 10 and default_country == "1" and digits[0] in "23456789":
            digits = "1" + digits
        elif len(digits) == 11 and default_country == "1" and digits.startswith("1"):
            pass
        else:
            return None
    if not 8 <= len(digits) <= 15 or digits[0] == "0":
        return None
    return "+" + digits


def normalize_customer_id(value: object) -> str | None:
    """Trimmed; None when nothing is left."""
    if value is None:
        return None
    text = str(value).strip(WHITESPACE)
    return text or None


NORMALIZERS = {"customer_id": normalize_customer_id, "email": normalize_email, "phone": normalize_phone}


# ------------------------------------------------------------------ the same in SQL

#: what the SQL normalizers take: a column or expression, or a Python value (bound as a literal)
SQLValue = Union[ColumnElement[Any], str, int]


def _text(expr: SQLValue) -> ColumnElement[Any]:
    """The expression as text: string columns as they are, anything else (a BIGINT phone) cast."""
    if not isinstance(expr, ClauseElement):
        expr = expression.literal(expr)
    if isinstance(expr.type, types.String):
        return expr
    return expression.cast(expr, String())


def _const(text: str) -> ColumnElement[str]:
    # fixed, quote-free constants render inline on every dialect (no parameters to type or bind)
    return expression.literal_column(f"'{text}'", String())


def _int(number: int) -> ColumnElement[int]:
    return expression.literal_column(str(number), Integer())


def _trimmed(expr: SQLValue) -> ColumnElement[Any]:
    return trim_chars(_text(expr), WHITESPACE)


def customer_id_sql(expr: SQLValue) -> ColumnElement[Any]:
    """``normalize_customer_id`` in SQL: trimmed, NULL when empty."""
    return functions.func.nullif(_trimmed(expr), _const(""), type_=String())


def email_sql(expr: SQLValue) -> ColumnElement[Any]:
    """``normalize_email`` in SQL: trimmed and lower-cased, NULL unless it looks like ``a@b.c``."""
    email = functions.func.lower(_trimmed(expr), type_=String())
    return expression.case((regexp_full_match(email, EMAIL_PATTERN), email), else_=expression.null())


#: The digits of a phone after a marker of how it was written (``p`` with +, ``z`` with 00, ``n`` neither):
#: the usable ones, E.164 being ``+`` then ``[1-9][0-9]{7,14}``.
_INTERNATIONAL_PATTERN = "p[1-9][0-9]{7,14}|z00[1-9][0-9]{7,14}"
_NORTH_AMERICAN_PATTERN = "n[2-9][0-9]{9}|n1[0-9]{10}"


def phone_sql(expr: SQLValue, default_country: str = "1") -> ColumnElement[Any]:
    """``normalize_phone`` in SQL: E.164 text, NULL when unusable.

    The digits are computed once, behind a marker of how the number was written, and the reference's
    tests of length and first digit are one pattern over that (engines do not share a repeated
    subexpression inside CASE, so each repetition of the digits would be computed again)."""
    text = _trimmed(expr)
    substr = functions.func.substr
    marker = expression.case((substr(text, _int(1), _int(1)) == _const("+"), _const("p")),
                             (substr(text, _int(1), _int(2)) == _const("00"), _const("z")), else_=_const("n"))
    key = marker + regexp_replace_all(text, _NOT_DIGIT_PATTERN, "")
    usable = _INTERNATIONAL_PATTERN + ("|" + _NORTH_AMERICAN_PATTERN if default_country == "1" else "")
    # n1?DDDDDDDDDD -> +1DDDDDDDDDD; then p… and z00… -> +…
    e164 = regexp_replace_all(regexp_replace_all(key, "^n1?", "+1"), "^(?:p|z00)", "+")
    return expression.case((expression.and_(regexp_full_match(text, _NO_LETTERS_PATTERN),
                                            regexp_full_match(key, usable)), e164), else_=expression.null())


SQL_NORMALIZERS = {"customer_id": customer_id_sql, "email": email_sql, "phone": phone_sql}


# ------------------------------------------------------------------ hashed, for the ad platforms


def _phone_digits(value: object) -> str | None:
    phone = normalize_phone(value)
    return None if phone is None else phone[1:]


#: form -> its normalization in Python
HASH_FORMS = {"email": normalize_email, "phone": normalize_phone, "phone_digits": _phone_digits}


def hash_identifier(form: str, value: object) -> str | None:
    """The SHA-256 hex (lower case) of ``value`` normalized as ``form``; None when it is unusable."""
    normalized = HASH_FORMS[form](value)
    return None if normalized is None else hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def hashed_sql(form: str, expr: SQLValue) -> ColumnElement[Any]:
    """``hash_identifier`` in SQL: the normalization, then SHA-256 hex; NULL when unusable."""
    normalized: ColumnElement[Any]
    if form == "phone_digits":
        normalized = functions.func.substr(phone_sql(expr), _int(2), type_=String())
    else:
        normalized = SQL_NORMALIZERS[form](expr)
    return sha256_hex(normalized)
