"""The destination kinds are one list: the registry (kind → class) and the checker's table of settings agree.

The checker (``check.destinations.KINDS``) sits below ``destinations`` in the
layers and cannot import it, so the two are compared here; so are the tables
keyed by kind that sit beside them.
"""

from __future__ import annotations

import pytest

from audlang import ast
from audlang.check import destinations as checked
from audlang.check import templates
from audlang.destinations import SettingsError, Target, audience, base, open_destination, registry
from audlang.destinations.ads import GoogleAds, Meta
from audlang.destinations.files import CsvFile, SqlTable
from audlang.destinations.vendors import Attentive, Braze, Klaviyo
from audlang.destinations.webhook import Webhook

TARGET = Target("Spring", "All", "D")


def test_the_registry_holds_exactly_the_checkers_kinds():
    assert list(registry.KINDS) == list(checked.KINDS)  # the same kinds, in the same order


def test_each_class_is_registered_under_the_kind_it_names():
    assert len(registry.CLASSES) == len(registry.KINDS)  # no two classes claim one kind
    for kind, cls in registry.KINDS.items():
        assert cls.kind == kind


def test_the_tables_keyed_by_kind_name_every_kind_and_no_other():
    assert set(base.DEFAULT_IDENTIFIERS) == set(registry.KINDS)
    assert set(base.DEFAULT_BATCH) == set(registry.KINDS)
    assert set(checked.BATCH_LIMITS) <= set(registry.KINDS)
    for kind, identifiers in templates.DEFAULT_IDENTIFIERS.items():  # what the checker renders templates with
        assert identifiers == base.DEFAULT_IDENTIFIERS[kind], kind


def _setting(key: str, value: str) -> ast.Setting:
    return ast.Setting(key, ast.TextValue((ast.StringValue(value),)))


@pytest.mark.parametrize(("kind", "settings", "cls", "over_http"), [
    ("csv", {"path": "out/{{ group }}.csv"}, CsvFile, False),
    ("sql", {"url": "sqlite:///target/copy.db", "table": "members"}, SqlTable, False),
    ("webhook", {"url": "https://hooks.example.com/in"}, Webhook, True),
    ("attentive", {"api_key": "k", "segment": "s"}, Attentive, True),
    ("braze", {"api_key": "k", "base_url": "https://rest.example.com"}, Braze, True),
    ("klaviyo", {"api_key": "k", "list_id": "L1"}, Klaviyo, True),
    ("meta", {"access_token": "t", "audience_id": "23851234567890123"}, Meta, True),
    ("google_ads", {"access_token": "t", "developer_token": "d", "customer_id": "1234567890",
                    "user_list_id": "987654321"}, GoogleAds, True),
])
def test_open_destination_opens_each_kind_with_its_class(tmp_path, kind, settings, cls, over_http):
    assert registry.destination_class(kind) is cls
    assert registry.speaks_http(cls) is over_http
    decl = ast.Destination("D", kind, tuple(_setting(k, v) for k, v in settings.items()))
    destination = open_destination(decl, TARGET, tmp_path, env={})
    try:
        assert type(destination) is cls and destination.kind == kind
    finally:
        destination.close()
    assert audience(base.resolve_settings(decl, {}), TARGET)  # every kind says which audience it writes


def test_an_unknown_kind_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="unknown destination kind mailchimp"):
        open_destination(ast.Destination("D", "mailchimp", ()), TARGET, tmp_path, env={})
    with pytest.raises(SettingsError, match="unknown destination kind mailchimp"):
        registry.destination_class("mailchimp")
