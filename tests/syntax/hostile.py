"""Hostile source files: what a pull request could hold to make validate, fmt or the language server
crash, hang or misreport. Shared by the fuzz tests of the CLI (tests/syntax/test_fuzz.py) and of
the language server.

Each case is a name and the file's bytes; ``text_of`` is the text an editor would hand the language
server for it (bytes that are not UTF-8 read as Latin-1, the way an editor shows a binary file).
"""

from __future__ import annotations

from audlang.syntax.grammar import MAX_NESTING

GOOD = 'segment "Big Spenders" < lifetime_revenue > 500 >\n'
MB = 1024 * 1024


def _segments(count: int) -> str:
    return "".join(f'segment "s{i}" < sms_opt_in and lifetime_revenue > {i} >\n' for i in range(count))


def _chain(terms: int, wrapped: bool) -> str:
    if wrapped:  # the canonical layout: one clause per line
        return 'segment "Chain" <\n  sms_opt_in\n' + "  and sms_opt_in\n" * (terms - 1) + ">\n"
    return 'segment "Chain" < ' + " and ".join(["sms_opt_in"] * terms) + " >\n"


def _cases() -> dict[str, bytes]:
    text = {
        # encodings and line ends
        "bom": "\ufeff" + GOOD + 'segment "Typo" < lifetime_revnue > 1 >\n',
        "bom only": "\ufeff",
        "bom in the middle": GOOD + "\ufeff" + GOOD,
        "crlf": GOOD.replace("\n", "\r\n") + 'segment "Typo" <\r\n  lifetime_revnue > 1\r\n>\r\n',
        "bom and crlf": "\ufeff" + GOOD.replace("\n", "\r\n") * 3,
        "lone cr": GOOD.replace("\n", "\r") * 3 + 'segment "Typo" < x >\r',
        "odd line separators": GOOD + "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" + GOOD,
        "control characters": 'segment "a\x1b[31m" < sms_opt_in \x1b]0;pwned\x07 >\n# \x1b[2J\n',
        "nul": GOOD + "\x00" * 1000,
        "nul in a string": 'segment "a\x00b" < postal = "\x00" >\n',
        "empty": "",
        "only blanks": " \t\n" * 1000,
        # size
        "ten megabytes of declarations": _segments(10 * MB // 56),
        "ten megabytes of comment": "#" + "x" * (10 * MB) + "\n" + GOOD,
        "a megabyte string": 'segment "a" < postal = "' + "p" * MB + '" >\n',
        "a megabyte name": 'segment "' + "n" * MB + '" < sms_opt_in >\nsegment "b" < in segment "' + "m" * MB + '" >\n',
        "an unclosed megabyte string": 'segment "a" < postal = "' + "p" * MB,
        "a long line": " " * MB + GOOD.strip() + " and" * 20_000 + " >\n",
        "a long chain, one line": _chain(20_000, wrapped=False),
        "a chain of 50,000 terms": _chain(50_000, wrapped=True),
        "thousands of broken declarations": 'segment "a" < sms_opt_in and >\n' * 20_000,
        # nesting
        "not x 5000": 'segment "a" < ' + "not " * 5000 + "sms_opt_in >\n",
        "(not x 3000": 'segment "a" < ' + "(not " * 3000 + "sms_opt_in" + ")" * 3000 + " >\n",
        "parentheses x 5000": 'segment "a" < ' + "(" * 5000 + "sms_opt_in" + ")" * 5000 + " >\n",
        "unclosed parentheses x 100000": 'segment "a" < ' + "(" * 100_000,
        "nested at the limit": 'segment "a" < ' + "sms_opt_in or email_opt_in and (" * MAX_NESTING + "sms_opt_in"
                               + ")" * MAX_NESTING + " >\n",
        "deep in a campaign": 'campaign "C" <\n  audience < ' + "not " * 5000 + "sms_opt_in >\n"
                              '  treatment "All" 100%\n>\n',
        # numbers and dates at and past every edge
        "extreme numbers": "".join(f'segment "n{i}" < lifetime_revenue > {n} >\n' for i, n in enumerate([
            "99999999999999999999999", "-0", "0.0000000000000000000000000001", "1" * 5000, "1." + "9" * 5000,
            "-" + "9" * 400, "1e400", "0x10", "1_000", "٣"])),
        "extreme counts": 'segment "a" < has_purchased orders >= 99999999999999999999 within last '
                          '99999999999999999999 hours >\nsegment "b" < has_purchased spend > 1' + "0" * 400 + ' >\n'
                          'segment "c" < near store "S" within 99999999999999999999999 miles >\n'
                          'segment "d" < has_purchased in 99999999 of last 99999999999 months >\n',
        "extreme dates": "".join(f'segment "d{i}" < {c} >\n' for i, c in enumerate([
            "has_purchased between 2024-01-01 and 9999-12-31", "has_purchased since 0001-01-01",
            "has_purchased after 10000-01-01", "has_purchased within last 99999999 years",
            "has_purchased after today - 999999 years", "first_order_date > 0000-00-00",
            "first_order_date = 2024-02-30", "has_purchased between 12-31 of 99999999 years ago and today",
            "has_purchased before today - 99999999999999999999 days", "created_at < 9999-12-31"])),
        # destination templates (rendered at validate): work and memory bounded, any number of them
        "a template that loops for hours": 'destination "F" csv <\n  path = "target/{% for i in range(100000) %}'
                                           '{% for j in range(100000) %}{% endfor %}{% endfor %}x.csv"\n>\n',
        "twenty templates that loop": "".join(
            f'destination "F{i}" webhook <\n  url = "https://hooks.example.com/in"\n  body = "{{% for i in '
            f'range(100000) %}}{{% for j in range(100000) %}}{{% endfor %}}{{% endfor %}}{{}}"\n>\n'
            for i in range(20)),
        "templates of gigabytes": 'destination "F" csv <\n  path = "target/{% set a = \'\'|center(400000000) %}'
                                  '{% set b = \'\'|center(400000000) %}{{ (a ~ b)|length }}.csv"\n>\n'
                                  'destination "G" webhook <\n  url = "https://hooks.example.com/in"\n  body = "'
                                  '{% set ns = namespace(s=\'x\') %}{% for i in range(64) %}{% set ns.s = ns.s ~ '
                                  'ns.s %}{% endfor %}{{ ns.s|length }}"\n>\n',
        # files the project names
        "list /dev/zero": 'segment "L" < in list "/dev/zero" >\n',
        "list environ": 'segment "L" < in list "/proc/self/environ" >\n',
        "list outside": 'segment "L" < in list "../../../../../../etc/passwd" >\n',
    }
    cases = {name: value.encode("utf-8") for name, value in text.items()}
    cases["binary"] = bytes(range(256)) * 64
    cases["not utf-8 after a good start"] = GOOD.encode() + b"\xff\xfe\xc0\x80" + GOOD.encode()
    cases["utf-16"] = GOOD.encode("utf-16")
    return cases


CASES = _cases()


def text_of(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
