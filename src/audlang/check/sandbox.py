"""The jinja2 sandbox destination templates render in, bounded in what a render builds and how long it runs.

jinja2's immutable sandbox keeps a template away from Python's internals; it
does not bound work: ``{% for i in range(100000) %}{% for j in range(100000)
%}…`` runs for hours and ``''|center(400000000)`` takes gigabytes. So every
render here (``run``) has

- **a deadline**: a ``sys.settrace`` tracer, on the rendering thread only (the
  language server renders in its own threads), counts the lines the compiled
  template runs and looks at the clock every 32 of them, and at every call;
  past the deadline the template's next line raises ``TooSlow``, a
  ``BaseException``, so no ``except Exception`` in jinja2 or a filter can
  swallow it; hooks refuse to go on once it is raised. Lines of Python code
  outside the template (a filter's own loop) are not traced: each of them
  works on values bounded below, and returns to the template;
- **a budget** of bytes (``Render.limit``): every operation that builds a
  value charges its size before it builds it, and the render stops with
  ``TooBig`` once the budget is spent. The budget is cumulative (what a render
  builds in all, not what it holds at once), so no render allocates more than
  it, whatever it frees. What is charged: ``*``, ``+``, ``%`` and ``~``;
  list, tuple and dict literals and slices; every filter's result (strings,
  lists, and each item a filter's generator yields), with the growing filters
  (``center``, ``indent``, ``wordwrap``, ``replace``, ``format``, ``join``,
  ``batch`` with a filler, ``slice``, ``escape``, ``upper``…) charged their
  largest possible result *before* they run; the results of calls (the same
  growing ``str`` methods are estimated first); the text of macros, ``{% set
  %}`` blocks and ``caller()``; writing a list or dict out as text; and the
  output itself.

Values a template builds can share parts (``[L] * 1000``, ``[ns.l, ns.l]``);
what they would be *written out* as (``size``: characters, about, counting each
shared part each time) is held to the budget too when they are built, so no
``{{ x }}``, ``|tojson`` or comparison can explode later in C, where no tracer
reaches.

Also refused (a ``SecurityError``, E121): an attribute the sandbox calls
unsafe, at once and also through filters (``map(attribute='__class__')``,
``sort(attribute=…)``) instead of jinja2's lazy undefined, which printed as
"Undefined" inside a list; writing out anything that is not a value (a
function, a generator, a ``namespace``, ``loop``): never ``<function … at
0x…>``; Python methods of strings, lists, dicts and numbers other than the
plain ones listed in ``METHODS`` (``translate``, ``expandtabs``, ``encode``,
``to_bytes``… are not there); ``|tojson`` with an indent; ``|sum`` of
anything but numbers. The globals are ``range`` (at most 100,000 numbers,
jinja2's) and ``namespace``; ``lipsum``, ``cycler``, ``joiner`` and ``dict``
are removed, and so are the ``urlize`` and ``pprint`` filters (HTML and
Python's repr, of no use for a path or a JSON body, and growing in ways no
estimate bounds).

Imports jinja2 and markupsafe only.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from types import FrameType
from typing import Any, NoReturn, TypeVar, Union

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace, pass_environment, pass_eval_context
from markupsafe import Markup, escape

#: the longest ``*`` repetition (characters or items) and the largest power
MAX_PRODUCT = 1_000_000
MAX_EXPONENT = 256
#: the largest integer a template may compute (Python writes out at most 4,300 digits anyway)
MAX_INT_BITS = 8192
#: what every render may build, in bytes, whatever it is given (plus ``PER_INPUT`` per character of input)
BASE_BYTES = 8 * 1024 * 1024
PER_INPUT = 64
#: a value written out as text is at most about this many times its ``size`` (quotes, separators, escapes)
WRITTEN = 6
#: the compiled code of a template, as Python names its frames
TEMPLATE_FILE = "<template>"

_T = TypeVar("_T")
#: what ``sys.settrace`` takes: called with (frame, event, arg), it returns the frame's local tracer
_Tracer = Callable[[FrameType, str, Any], Union["_Tracer", None]]
#: the containers a template may build or be given (``_CONTAINERS``); their items are any values
_Container = Union[list[Any], tuple[Any, ...], dict[Any, Any], set[Any], frozenset[Any]]


class TooSlow(BaseException):
    """The render ran past its deadline (a ``BaseException``: nothing in a template's path may catch it)."""

    def __init__(self, line: int | None = None):
        super().__init__("the template takes too long to render")
        self.line = line


class TooBig(SecurityError):
    """The render would build more than its budget."""

    def __init__(self, limit: int):
        mib = f"{limit / 2**20:,.1f}".removesuffix(".0")
        super().__init__(f"it would build more than {mib} MiB")
        self.limit = limit


class _NotRendering(Exception):
    """A hook called outside a render: jinja2 folding a constant at compile time, which it then leaves to
    the render (``as_const`` takes any exception for "not constant")."""


# ------------------------------------------------------------------ the render's state


_local = threading.local()


class Render:
    """One render's deadline and budget, on the thread that runs it."""

    def __init__(self, deadline: float, limit: int):
        self.deadline = deadline
        self.limit = limit
        self.used = 0
        self.expired = False
        self.events = 0
        self.line: int | None = None
        #: id -> (container, size): containers a template holds cannot change (the sandbox is immutable)
        self._sizes: dict[int, tuple[object, int]] = {}
        self._plain: dict[int, object] = {}

    # budget
    def charge(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise TooBig(self.limit)

    def built(self, value: object) -> object:
        """Charge a value just built (a filter's or a call's result); a generator is charged item by item."""
        if isinstance(value, str):
            self.charge(sys.getsizeof(value))
        elif isinstance(value, _CONTAINERS):
            # The container and its items, which may be new too (``range(100000)|list`` makes 100,000
            # numbers): by C loops, whatever the length.
            items = (*value.keys(), *value.values()) if isinstance(value, dict) else value
            self.charge(sys.getsizeof(value) + sum(map(sys.getsizeof, items)))
            self.shared(value)
        elif isinstance(value, Iterator):
            return _counted(self, value)
        return value

    def shared(self, value: object) -> None:
        """A built value must be writable within the budget, counting each shared part each time."""
        if self.size(value) > self.limit:
            raise TooBig(self.limit)

    def size(self, value: object) -> int:
        """About how many characters ``value`` is written out as: each part counted each time it appears.
        Iterative (no recursion on nested lists), by C loops where it can (a list of a million numbers, or
        of one list a million times, is counted without a Python loop over it); stops once past the
        budget."""
        scalar = _scalar_size(value)
        if scalar is not None:
            return scalar
        assert isinstance(value, _CONTAINERS)  # _scalar_size sizes every other value
        stack: list[tuple[_Container, int]] = [(value, 1)]
        total, limit, sizes = 0, self.limit, self._sizes
        while stack:
            container, times = stack.pop()
            known = sizes.get(id(container))
            if known is not None and known[0] is container:
                total += known[1] * times
            else:
                for item, count in _parts(container, times):
                    if count < 0:  # the container's own part, or a run of plain items
                        total -= count
                    elif isinstance(item, _CONTAINERS):
                        stack.append((item, count))
                    else:
                        total += (_scalar_size(item) or 0) * count
            if total > limit:
                return total
        sizes[id(value)] = (value, total)
        return total

    def plain(self, value: object) -> None:
        """Refuse writing out what is not a value: an undefined (its own error), a function, a generator,
        a ``namespace`` or ``loop`` object, anywhere inside lists and dicts."""
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, _PLAIN) or item is None:
                continue
            if isinstance(item, Undefined):
                item._fail_with_undefined_error()
            if not isinstance(item, _CONTAINERS):
                raise SecurityError(f"the template writes out {_what(item)}, not a value")
            if self._plain.get(id(item)) is item:
                continue
            self._plain[id(item)] = item
            items = (*item.keys(), *item.values()) if isinstance(item, dict) else item
            if not set(map(type, items)) <= _PLAIN_TYPES:
                stack.extend(dict(zip(map(id, items), items, strict=True)).values())

    def written(self, value: object) -> str:
        """``value`` as text, checked and charged (a string is itself, no charge)."""
        if isinstance(value, str):
            return value
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        self.plain(value)
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            self.charge(WRITTEN * self.size(value))
        text = str(value)
        self.charge(sys.getsizeof(text))
        return text

    # time
    def trace(self, frame: FrameType, event: str, arg: object) -> _Tracer | None:
        """The global tracer (``call`` events): past the deadline, a template frame stops at once; any
        other frame only marks the render expired (its template stops at its next line, and every hook
        refuses), so no library code is interrupted halfway."""
        if time.monotonic() > self.deadline:
            self.expired = True
            if frame.f_code.co_filename == TEMPLATE_FILE:
                self._stop(frame)
        if frame.f_code.co_filename == TEMPLATE_FILE:
            return self.trace_lines
        return None

    def trace_lines(self, frame: FrameType, event: str, arg: object) -> _Tracer:
        self.events += 1
        if self.expired or (not self.events & 31 and time.monotonic() > self.deadline):
            self.expired = True
            self._stop(frame)
        return self.trace_lines

    def _stop(self, frame: FrameType) -> NoReturn:
        template = frame.f_globals.get("__jinja_template__")
        if template is not None and self.line is None:
            self.line = template.get_corresponding_lineno(frame.f_lineno)
        raise TooSlow(self.line)

    def alive(self) -> Render:
        if self.expired:
            raise TooSlow(self.line)
        return self


_CONTAINERS = (list, tuple, dict, set, frozenset)
_PLAIN = (str, bool, int, float, complex)
_PLAIN_TYPES = frozenset({str, bool, int, float, complex, type(None), Markup})


def _parts(container: _Container, times: int) -> Iterator[tuple[object, int]]:
    """What ``Render.size`` adds up for one container met ``times`` times: (None, -n) for n characters
    counted already, (item, count) for an item met count times in all. Plain strings and numbers are
    summed by C loops; the other items once per distinct object, with how often they appear."""
    items = (*container.keys(), *container.values()) if isinstance(container, dict) else container
    n = len(items)
    yield None, -(2 + 2 * n) * times
    kinds = set(map(type, items))
    if kinds <= {str}:
        yield None, -(sum(map(len, items)) + 2 * n) * times
        return
    if kinds <= {int, bool}:
        yield None, -(sum(map(int.bit_length, items)) * 31 // 100 + 2 * n) * times
        return
    distinct = dict(zip(map(id, items), items, strict=True))
    counts = Counter(map(id, items)) if len(distinct) < len(items) else None
    for key, item in distinct.items():
        yield item, times * (counts[key] if counts is not None else 1)


def _scalar_size(value: object) -> int | None:
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() * 31 // 100 + 2
    if isinstance(value, (float, complex)):
        return 24
    if isinstance(value, _CONTAINERS):
        return None
    return 16  # an object: writing it out is refused (``Render.plain``)


def _what(value: object) -> str:
    if isinstance(value, Namespace):
        return "a namespace"
    if isinstance(value, LoopContext):
        return "the loop object"
    if isinstance(value, Iterator):
        return "a generator (add |list)"
    if callable(value):
        return "a function or method (call it)"
    return f"a {type(value).__name__} object"


def active() -> Render:
    """The render this thread is running (``_NotRendering`` outside one)."""
    state: Render | None = getattr(_local, "state", None)
    if state is None:
        raise _NotRendering
    return state.alive()


def _counted(state: Render, items: Iterator[object]) -> Iterator[object]:
    for item in items:
        yield state.alive().built(item)


@contextlib.contextmanager
def limits(deadline: float, limit: int, compiling: bool = False) -> Iterator[Render]:
    """Run the ``with`` body's template code under the deadline and budget: a render (``TooSlow``,
    ``TooBig``), or, ``compiling``, jinja2's parser (stopped in any frame, since it is all jinja2's)."""
    state = Render(deadline, limit)
    previous = sys.gettrace()
    if compiling:
        def tracer(frame: FrameType, event: str, arg: object) -> None:
            if time.monotonic() > deadline:
                raise TooSlow
            return None
        sys.settrace(tracer)
    else:
        outer = getattr(_local, "state", None)
        _local.state = state
        sys.settrace(state.trace)
    try:
        yield state
    finally:
        sys.settrace(previous)
        if not compiling:
            _local.state = outer


# ------------------------------------------------------------------ estimates

_PERCENT = re.compile(r"%(?:\(([^)]*)\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([diouxXeEfFgGcrsa%])")


def _percent_size(state: Render, text: str, args: object) -> int:
    """The most ``text % args`` can write (widths and precisions included); refuses writing out objects."""
    mapping = args if isinstance(args, Mapping) else None
    values = args if isinstance(args, tuple) else (args,)
    state.plain(args)
    total, i = len(text), 0
    for match in _PERCENT.finditer(text):
        key, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        most = 0
        for part in (width, precision):
            if part == "*":
                most = max(most, abs(values[i]) if i < len(values) and isinstance(values[i], int) else 0)
                i += 1
            elif part:
                most = max(most, int(part))
        if key is not None and mapping is not None:
            value = mapping.get(key)
        elif i < len(values):
            value, i = values[i], i + 1
        else:
            value = None
        total += max(most, WRITTEN * state.size(value))
    return total


def _text_bytes(text: str) -> int:
    return 1 if text.isascii() else 4


def _split_bytes(text: str) -> int:
    """The most a split of ``text`` builds: a string object per character, at worst."""
    return 64 * (len(text) + 1) + sys.getsizeof(text)


# ------------------------------------------------------------------ methods of values

_TEXT_METHODS = frozenset({
    "capitalize", "casefold", "center", "count", "endswith", "find", "format", "format_map", "index", "isalnum",
    "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace",
    "istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix",
    "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith",
    "strip", "swapcase", "title", "upper", "zfill"})
#: the Python methods a template may call, by the kind of value; any other is refused by the sandbox
METHODS = {
    "text": _TEXT_METHODS,
    "dict": frozenset({"get", "items", "keys", "values"}),
    "sequence": frozenset({"count", "index"}),
    "set": frozenset({"isdisjoint", "issubset", "issuperset"}),
    "number": frozenset({"bit_length", "bit_count", "is_integer", "conjugate", "as_integer_ratio"}),
}
#: methods that may grow a string by up to this factor (Unicode case mappings: "ﬃ".upper() == "FFI")
_CASE_GROWTH = {"capitalize": 3, "casefold": 3, "lower": 2, "swapcase": 3, "title": 3, "upper": 3}


def _kind(obj: object) -> str | None:
    if isinstance(obj, (str, bytes)):
        return "text"
    if isinstance(obj, dict):
        return "dict"
    if isinstance(obj, (list, tuple, range)):
        return "sequence"
    if isinstance(obj, (set, frozenset)):
        return "set"
    if isinstance(obj, (int, float, complex)):
        return "number"
    return None


def _bounded_method(obj: str, name: str, method: Callable[..., object]) -> Callable[..., object]:
    """``obj.name`` estimated before it runs (the call's result is charged by ``Sandbox.call``)."""

    def estimate(*args: object, **kwargs: object) -> int:
        size = sys.getsizeof(obj)
        if name in ("center", "ljust", "rjust", "zfill"):
            width = args[0] if args else kwargs.get("width", 0)
            return size + (width if isinstance(width, int) and width > 0 else 0) * 4
        if name in ("replace",):
            old = args[0] if args else kwargs.get("old", "")
            new = args[1] if len(args) > 1 else kwargs.get("new", "")
            count = args[2] if len(args) > 2 else kwargs.get("count", -1)
            if not isinstance(old, str) or not isinstance(new, str) or not isinstance(count, int):
                return size  # the method's own TypeError
            times = obj.count(old) if old else len(obj) + 1
            if count >= 0:
                times = min(times, count)
            return size + times * max(0, len(new) - len(old)) * 4
        if name in ("split", "rsplit", "splitlines", "partition", "rpartition"):
            return _split_bytes(obj)
        if name in _CASE_GROWTH:
            return size * _CASE_GROWTH[name]
        return 0

    if name == "join":
        def join(iterable: Iterable[object]) -> object:
            state = active()
            pieces: list[str] = []
            total = sys.getsizeof(obj)
            for i, piece in enumerate(iterable):
                if not isinstance(piece, str):
                    raise TypeError(f"sequence item {i}: expected str instance, {type(piece).__name__} found")
                total += len(piece) * _text_bytes(piece) + (len(obj) if i else 0)
                if state.used + total > state.limit:  # stop reading before the pieces outgrow the budget
                    raise TooBig(state.limit)
                pieces.append(piece)
            state.charge(total)
            return method(pieces)
        return functools.update_wrapper(join, method)

    def bounded(*args: object, **kwargs: object) -> object:
        active().charge(estimate(*args, **kwargs))
        return method(*args, **kwargs)

    return functools.update_wrapper(bounded, method)


class _Formatter(SandboxedFormatter):
    """``str.format``: each field checked, estimated from its width and value, and charged."""

    def convert_field(self, value: object, conversion: str | None) -> object:
        state = active()
        if conversion is not None:
            state.plain(value)
            state.charge(WRITTEN * state.size(value))
        return super().convert_field(value, conversion)

    def format_field(self, value: object, format_spec: str) -> str:
        state = active()
        state.plain(value)
        widths = [int(n) for n in re.findall(r"\d+", format_spec or "")]
        state.charge(max([WRITTEN * state.size(value), *widths]) * 4)
        text: str = super().format_field(value, format_spec)
        state.charge(sys.getsizeof(text))
        return text


class _EscapeFormatter(_Formatter, SandboxedEscapeFormatter):
    pass


# ------------------------------------------------------------------ filters


def _value_at(func: Callable[..., object]) -> int:
    """Where a filter's value is among its arguments: after the context jinja2 passes, if any."""
    return 1 if getattr(func, "jinja_pass_arg", None) is not None else 0


#: filters whose value (and text arguments) are written out as text first
_TEXT_FILTERS = frozenset({"capitalize", "center", "e", "escape", "forceescape", "indent", "lower", "replace",
                           "safe", "string", "striptags", "title", "trim", "truncate", "upper", "wordcount",
                           "wordwrap"})
#: filters whose result is at most this many times the size of their value
_GROWTH = {"capitalize": 3, "lower": 2, "title": 3, "upper": 3, "e": 6, "escape": 6, "forceescape": 6,
           "xmlattr": 6, "urlencode": 12, "tojson": 12}
REMOVED_FILTERS = ("urlize", "pprint")


def _argument(args: tuple[object, ...], kwargs: dict[str, object], index: int, name: str,
              default: object = None) -> object:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _estimate(state: Render, name: str, value: object, args: tuple[object, ...], kwargs: dict[str, object]) -> int:
    """The most filter ``name`` can build from ``value`` and its arguments, in bytes (0: nothing beyond its
    result, which is charged when it returns)."""
    text = value if isinstance(value, str) else None
    if name in _GROWTH:
        if text is not None:
            return _GROWTH[name] * sys.getsizeof(text)
        state.plain(value)
        return _GROWTH[name] * state.size(value)
    if text is None:
        return 0
    size, wide = sys.getsizeof(text), _text_bytes(text)
    if name == "center":
        width = _argument(args, kwargs, 0, "width", 80)
        return size + (width if isinstance(width, int) and width > 0 else 0) * 4
    if name == "indent":
        width = _argument(args, kwargs, 0, "width", 4)
        prefix = state.written(width) if isinstance(width, str) else " " * (width if isinstance(width, int) else 0)
        return size + (text.count("\n") + 1) * len(prefix) * max(wide, _text_bytes(prefix))
    if name == "wordwrap":
        wrap = _argument(args, kwargs, 3, "wrapstring", None)
        wrap = "\n" if wrap is None else state.written(wrap)
        return size + (len(text) + 1) * len(wrap) * max(wide, _text_bytes(wrap))
    if name == "replace":
        old = state.written(_argument(args, kwargs, 0, "old", ""))
        new = state.written(_argument(args, kwargs, 1, "new", ""))
        count = _argument(args, kwargs, 2, "count", None)
        times = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            times = min(times, count)
        return size + times * max(0, len(new) - len(old)) * 4
    if name == "truncate":
        end = _argument(args, kwargs, 2, "end", "...")
        return size + (sys.getsizeof(state.written(end)) if end is not None else 0)
    return 0


def _guarded(name: str, func: Callable[..., object]) -> Callable[..., object]:
    at = _value_at(func)

    @functools.wraps(func)
    def guarded(*args: object, **kwargs: object) -> object:
        state = active()
        if len(args) > at:
            value = args[at]
            if name in _TEXT_FILTERS:
                value = state.written(value)
                args = (*args[:at], value, *args[at + 1:])
            state.charge(_estimate(state, name, value, args[at + 1:], kwargs))
        return state.built(func(*args, **kwargs))

    return guarded


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Iterable[object], d: str = "", attribute: str | int | None = None) -> str:
    """``join``, item by item: each item written out and charged before the next is read."""
    state = active()
    if attribute is not None:
        from jinja2.filters import make_attrgetter

        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    separator = state.written(d)
    pieces: list[str] = []
    for i, item in enumerate(value):
        text = state.written(item)
        state.charge((len(text) + (len(separator) if i else 0)) * max(_text_bytes(text), _text_bytes(separator)))
        pieces.append(str(escape(text)) if eval_ctx.autoescape and not isinstance(text, Markup) else text)
    return separator.join(pieces)


def _format(value: object, *args: object, **kwargs: object) -> str:
    """``format``: ``value % args``, estimated from the widths in the format first (as ``%``)."""
    if args and kwargs:
        raise jinja2.exceptions.FilterArgumentError("can't handle positional and keyword arguments at the same time")
    state = active()
    text = state.written(value)
    values = kwargs or args
    state.charge(_percent_size(state, text, values) * 4)
    return text % values


@pass_environment
def _sum(environment: jinja2.Environment, iterable: Iterable[Any], attribute: str | int | None = None,
         start: object = 0) -> object:
    if not isinstance(start, (int, float)) or isinstance(start, bool):
        raise SecurityError("sum adds numbers only (join strings with |join)")
    from jinja2.filters import sync_do_sum

    return sync_do_sum(environment, iterable, attribute, start)


def _batch(value: Iterable[Any], linecount: int, fill_with: object = None) -> Iterator[list[Any]]:
    if fill_with is not None and isinstance(linecount, int):
        active().charge(8 * max(linecount, 0))
    from jinja2.filters import do_batch

    return do_batch(value, linecount, fill_with)


@pass_eval_context
def _slice(eval_ctx: EvalContext, value: Collection[Any], slices: int, fill_with: object = None) -> Iterator[list[Any]]:
    if isinstance(slices, int):
        active().charge(64 * max(slices, 0))
    from jinja2.filters import sync_do_slice

    return sync_do_slice(value, slices, fill_with)


@pass_eval_context
def _tojson(eval_ctx: EvalContext, value: object, indent: int | None = None) -> Markup:
    if indent:
        raise SecurityError("tojson writes compact JSON only (no indent)")
    from jinja2.filters import do_tojson

    return do_tojson(eval_ctx, value)


def filters() -> dict[str, Callable[..., object]]:
    """jinja2's filters, each guarded; the growing ones replaced or estimated; ``REMOVED_FILTERS`` gone."""
    from jinja2.filters import FILTERS as DEFAULT_FILTERS  # jinja2.defaults re-exports it (not declared)

    table: dict[str, Callable[..., object]] = {name: f for name, f in DEFAULT_FILTERS.items()
                                               if name not in REMOVED_FILTERS}
    table.update({"join": _join, "format": _format, "sum": _sum, "batch": _batch, "slice": _slice,
                  "tojson": _tojson})
    return {name: _guarded(name, f) for name, f in table.items()}


# ------------------------------------------------------------------ the environment


class _CodeGenerator(CodeGenerator):
    """jinja2's code, with ``~``, literals and slices going through the environment's budget."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.audlang_concat(context.eval_ctx, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self.write("environment.audlang_built(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self.write("environment.audlang_built(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":
            return super().visit_Tuple(node, frame)
        self.write("environment.audlang_built(")
        super().visit_Tuple(node, frame)
        self.write(")")
        return None

    @optimizeconst
    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, nodes.Slice):
            return CodeGenerator.visit_Getitem(self, node, frame)
        self.write("environment.audlang_built(")
        self.visit(node.node, frame)
        self.write("[")
        self.visit(node.arg, frame)
        self.write("])")
        return None


def _concat(pieces: Iterable[str]) -> str:
    """The text of a macro, a ``{% set %}`` block, ``caller()`` or a filter block: charged before it is
    joined (its pieces are there already)."""
    pieces = list(pieces)
    state: Render | None = getattr(_local, "state", None)
    if state is not None:
        state.alive().charge(sum(sys.getsizeof(p) for p in pieces))
    return "".join(pieces)


def _finalize(value: object) -> object:
    """Every ``{{ … }}``: a value written out, never a function, generator or object."""
    if isinstance(value, str) or value is None or isinstance(value, (bool, int, float)):
        return value
    return active().written(value)


def _charge_product(state: Render, left: object, right: object) -> None:
    """``a * b``: a repetition (text, list or tuple times a number) charged; a product of too many bits refused."""
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
            if len(seq) * count > MAX_PRODUCT:
                raise SecurityError(f"a repetition longer than {MAX_PRODUCT:,} is refused")
            if count > 0:
                each = _text_bytes(seq) if isinstance(seq, str) else 8
                state.charge(len(seq) * count * each + 64)
                if not isinstance(seq, str) and state.size(seq) * count > state.limit:
                    raise TooBig(state.limit)
    if isinstance(left, int) and isinstance(right, int) and \
            left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise SecurityError(f"a number above {MAX_INT_BITS:,} bits is refused")


def _check_power(left: object, right: object) -> None:
    """``a ** b``: an exponent above ``MAX_EXPONENT``, or a power of too many bits, refused."""
    if isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
        if right > MAX_EXPONENT:
            raise SecurityError(f"a power above {MAX_EXPONENT} is refused")
        if right > 0 and left.bit_length() * right > MAX_INT_BITS:
            raise SecurityError(f"a number above {MAX_INT_BITS:,} bits is refused")


def _charge_sum(state: Render, left: object, right: object) -> None:
    """``a + b``: a concatenation (of texts, lists or tuples) charged; a sum of too many bits refused."""
    if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
        each = max(_text_bytes(left), _text_bytes(right)) if isinstance(left, str) and \
            isinstance(right, str) else 8
        state.charge((len(left) + len(right)) * each + 64)
        if not isinstance(left, str) and state.size(left) + state.size(right) > state.limit:
            raise TooBig(state.limit)
    elif isinstance(left, int) and isinstance(right, int) and \
            max(left.bit_length(), right.bit_length()) >= MAX_INT_BITS:
        raise SecurityError(f"a number above {MAX_INT_BITS:,} bits is refused")


class Sandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox under ``limits``: binary operators, ``~``, literals, slices, filters,
    calls, attribute access and output all go through the render's deadline and budget."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = _CodeGenerator
    concat = staticmethod(_concat)

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.filters = filters()
        for name in ("lipsum", "cycler", "joiner", "dict"):
            self.globals.pop(name, None)

    # operators
    def call_binop(self, context: Context, operator: str, left: object, right: object) -> object:
        state = active()
        if operator == "*":
            _charge_product(state, left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            _charge_sum(state, left, right)
        elif operator == "%" and isinstance(left, str):
            state.charge(_percent_size(state, left, right) * 4)
        return super().call_binop(context, operator, left, right)

    def audlang_concat(self, eval_ctx: EvalContext, values: tuple[object, ...]) -> str:
        """``a ~ b``: every part written out, the whole charged before it is joined."""
        state = active()
        pieces = [state.written(v) for v in values]
        state.charge(sum(sys.getsizeof(p) for p in pieces))
        if eval_ctx.autoescape:
            return Markup("").join(escape(p) for p in pieces)
        return "".join(pieces)

    def audlang_built(self, value: _T) -> _T:
        """A list, tuple or dict literal, or a slice."""
        state = active()
        state.charge(sys.getsizeof(value))
        if isinstance(value, (list, tuple, dict)):
            state.shared(value)
        return value

    # attributes
    def is_safe_attribute(self, obj: object, attr: str, value: object) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        kind = _kind(obj)
        return kind is None or not callable(value) or attr in METHODS[kind]

    def unsafe_undefined(self, obj: object, attribute: str) -> NoReturn:
        """Refused at once, wherever the attribute is asked for (``map(attribute=…)`` too)."""
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe.")

    def getattr(self, obj: object, attribute: str) -> object:
        return self._bounded(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: object, argument: object) -> object:
        value = super().getitem(obj, argument)
        return self._bounded(obj, argument, value) if isinstance(argument, str) else value

    @staticmethod
    def _bounded(obj: object, name: str, value: object) -> object:
        if isinstance(obj, str) and callable(value) and name in _TEXT_METHODS and \
                name not in ("format", "format_map") and not isinstance(value, Undefined):
            return _bounded_method(obj, name, value)
        return value

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map`` with every field estimated and charged (``_Formatter``)."""
        if not callable(value) or getattr(value, "__name__", None) not in ("format", "format_map") or \
                not isinstance(getattr(value, "__self__", None), str):
            return None
        text: str = value.__self__
        formatter = _EscapeFormatter(self, escape=text.escape) if isinstance(text, Markup) else _Formatter(self)
        is_map = value.__name__ == "format_map"

        def format_(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                mapping = args[0]
                args, kwargs = (), mapping
            return type(text)(formatter.vformat(text, args, kwargs))

        return functools.update_wrapper(format_, value)

    # calls
    def call(__self, __context: Context, __obj: object,  # noqa: N805 - jinja2's own signature
             *args: Any, **kwargs: Any) -> object:
        state = active()
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(__obj, Macro):
            return result  # its text was charged when it was joined (``concat``)
        return state.built(result)


def budget(names: Mapping[str, object]) -> int:
    """The bytes a render given ``names`` may build: ``BASE_BYTES`` plus ``PER_INPUT`` per character of
    what it is given (a body at apply is given a whole batch)."""
    probe = Render(math.inf, sys.maxsize)
    return BASE_BYTES + PER_INPUT * probe.size(dict(names))
