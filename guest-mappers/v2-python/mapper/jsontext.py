"""JSON texts read and written exactly as the Rust v2 mapper does (serde_json 1.0, `Value`).

The host compares the envelopes of the Rust, Python and JavaScript v2 mappers for equality,
and the payload embeds each change's old and new values *parsed* from JSON texts. So this
module reproduces serde_json's observable behaviour rather than Python's `json`:

- `parse` accepts exactly what `serde_json::from_str::<Value>` accepts and, on failure,
  raises `JsonError` whose text is serde_json's (`expected value at line 1 column 1`),
  positions counted in UTF-8 bytes, recursion limited to 127 nested arrays/objects.
- Numbers: integers that fit `u64` (or `i64` when negative) stay `int`; everything else
  becomes a `float` computed the way serde_json does without its `float_roundtrip`
  feature (`significand * 10^exp` in double precision, digits past `u64` ignored), so
  it can differ from Python's `float()` in the last bit, and `-0` is `-0.0`.
- Objects come back as `dict`s with keys sorted by code point (serde_json's `BTreeMap`);
  a repeated key keeps its last value.
- `dumps` writes compact JSON in the dict's insertion order with serde_json's escaping
  (`\\"`, `\\\\`, `\\b \\f \\n \\r \\t`, other controls as `\\u00xx`, nothing else escaped)
  and its float format (shortest round-trip digits; plain notation for decimal exponents
  -5..=15, else `1.5e+20` / `1e-7`; always a `.0` or an exponent).
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["JsonError", "dumps", "format_float", "parse"]

# serde_json's error texts (serde_json::error::ErrorCode's Display).
EOF_LIST = "EOF while parsing a list"
EOF_OBJECT = "EOF while parsing an object"
EOF_STRING = "EOF while parsing a string"
EOF_VALUE = "EOF while parsing a value"
EXPECTED_COLON = "expected `:`"
EXPECTED_LIST_COMMA_OR_END = "expected `,` or `]`"
EXPECTED_OBJECT_COMMA_OR_END = "expected `,` or `}`"
EXPECTED_IDENT = "expected ident"
EXPECTED_VALUE = "expected value"
INVALID_ESCAPE = "invalid escape"
INVALID_NUMBER = "invalid number"
NUMBER_OUT_OF_RANGE = "number out of range"
CONTROL_CHARACTER = "control character (\\u0000-\\u001F) found while parsing a string"
KEY_MUST_BE_A_STRING = "key must be a string"
LONE_LEADING_SURROGATE = "lone leading surrogate in hex escape"
TRAILING_COMMA = "trailing comma"
TRAILING_CHARACTERS = "trailing characters"
UNEXPECTED_END_OF_HEX_ESCAPE = "unexpected end of hex escape"
RECURSION_LIMIT = "recursion limit exceeded"


class JsonError(ValueError):
    """A JSON text serde_json would refuse; `str()` is serde_json's message."""

    def __init__(self, code: str, line: int, column: int) -> None:
        super().__init__(f"{code} at line {line} column {column}")
        self.code = code
        self.line = line
        self.column = column


_U64_MAX = 2**64 - 1
_I32_MAX = 2**31 - 1
_I32_MIN = -(2**31)
_POW10 = tuple(float(f"1e{i}") for i in range(309))
_WHITESPACE = b" \n\t\r"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_PLAIN_STRING = re.compile(rb'[^"\\\x00-\x1f]*')
_ESCAPES = {b'"': b'"', b"\\": b"\\", b"/": b"/", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t"}
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def _u64_overflows(value: int, digit: int) -> bool:
    return value >= _U64_MAX // 10 and (value > _U64_MAX // 10 or digit > _U64_MAX % 10)


def _saturate_i32(value: int) -> int:
    return max(_I32_MIN, min(_I32_MAX, value))


class _Parser:
    """A port of serde_json's `Deserializer<StrRead>` for `Value`, over UTF-8 bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.index = 0
        self.remaining_depth = 128

    # -- reading ---------------------------------------------------------------

    def peek(self) -> int | None:
        return self.data[self.index] if self.index < len(self.data) else None

    def next(self) -> int | None:
        byte = self.peek()
        if byte is not None:
            self.index += 1
        return byte

    def peek_digit(self) -> int | None:
        byte = self.peek()
        return byte - 48 if byte is not None and byte in _DIGITS else None

    def whitespace(self) -> int | None:
        """Skips whitespace; the next byte, not consumed, or None at the end."""
        while (byte := self.peek()) is not None and byte in _WHITESPACE:
            self.index += 1
        return byte

    # -- errors: `error` points at the byte just read, `peek_error` at the next ---

    def _at(self, code: str, index: int) -> JsonError:
        start = self.data.rfind(b"\n", 0, index) + 1
        return JsonError(code, 1 + self.data.count(b"\n", 0, start), index - start)

    def error(self, code: str) -> JsonError:
        return self._at(code, self.index)

    def peek_error(self, code: str) -> JsonError:
        return self._at(code, min(len(self.data), self.index + 1))

    # -- values ----------------------------------------------------------------

    def value(self) -> Any:
        byte = self.whitespace()
        if byte is None:
            raise self.peek_error(EOF_VALUE)
        char = chr(byte)
        if char in "ntf":
            self.index += 1
            rest, result = {"n": (b"ull", None), "t": (b"rue", True), "f": (b"alse", False)}[char]
            self.ident(rest)
            return result
        if char == "-":
            self.index += 1
            return self.integer(positive=False)
        if char in "0123456789":
            return self.integer(positive=True)
        if char == '"':
            self.index += 1
            return self.string()
        if char in "[{":
            self.remaining_depth -= 1
            if self.remaining_depth == 0:
                raise self.peek_error(RECURSION_LIMIT)
            self.index += 1
            result = self.array() if char == "[" else self.object()
            self.remaining_depth += 1
            self.index += 1  # the closing bracket the loop stopped at
            return result
        raise self.peek_error(EXPECTED_VALUE)

    def ident(self, rest: bytes) -> None:
        for expected in rest:
            byte = self.next()
            if byte is None:
                raise self.error(EOF_VALUE)
            if byte != expected:
                raise self.error(EXPECTED_IDENT)

    def array(self) -> list[Any]:
        items: list[Any] = []
        while True:
            byte = self.whitespace()
            if byte is None:
                raise self.peek_error(EOF_LIST)
            if byte == ord("]"):
                return items
            if items:
                if byte != ord(","):
                    raise self.peek_error(EXPECTED_LIST_COMMA_OR_END)
                self.index += 1
                byte = self.whitespace()
                if byte == ord("]"):
                    raise self.peek_error(TRAILING_COMMA)
                if byte is None:
                    raise self.peek_error(EOF_VALUE)
            items.append(self.value())

    def object(self) -> dict[str, Any]:
        entries: dict[str, Any] = {}
        first = True
        while True:
            byte = self.whitespace()
            if byte is None:
                raise self.peek_error(EOF_OBJECT)
            if byte == ord("}"):
                return dict(sorted(entries.items()))
            if first:
                first = False
                if byte != _QUOTE:
                    raise self.peek_error(KEY_MUST_BE_A_STRING)
            elif byte == ord(","):
                self.index += 1
                byte = self.whitespace()
                if byte == ord("}"):
                    raise self.peek_error(TRAILING_COMMA)
                if byte is None:
                    raise self.peek_error(EOF_VALUE)
                if byte != _QUOTE:
                    raise self.peek_error(KEY_MUST_BE_A_STRING)
            else:
                raise self.peek_error(EXPECTED_OBJECT_COMMA_OR_END)
            self.index += 1
            key = self.string()
            byte = self.whitespace()
            if byte is None:
                raise self.peek_error(EOF_OBJECT)
            if byte != ord(":"):
                raise self.peek_error(EXPECTED_COLON)
            self.index += 1
            entries[key] = self.value()

    # -- strings -----------------------------------------------------------------

    def string(self) -> str:
        """The rest of a string whose opening quote was consumed."""
        scratch = bytearray()
        while True:
            start = self.index
            self.index = _PLAIN_STRING.match(self.data, start).end()
            scratch += self.data[start : self.index]
            byte = self.peek()
            if byte is None:
                raise self.error(EOF_STRING)
            self.index += 1
            if byte == _QUOTE:
                return scratch.decode("utf-8")
            if byte != _BACKSLASH:
                raise self.error(CONTROL_CHARACTER)
            self.escape(scratch)

    def next_in_string(self) -> int:
        byte = self.next()
        if byte is None:
            raise self.error(EOF_STRING)
        return byte

    def escape(self, scratch: bytearray) -> None:
        char = bytes([self.next_in_string()])
        if char in _ESCAPES:
            scratch += _ESCAPES[char]
        elif char == b"u":
            self.unicode_escape(scratch)
        else:
            raise self.error(INVALID_ESCAPE)

    def hex4(self) -> int:
        digits = self.data[self.index : self.index + 4]
        if len(digits) < 4:
            self.index = len(self.data)
            raise self.error(EOF_STRING)
        self.index += 4
        if any(d not in _HEX for d in digits):
            raise self.error(INVALID_ESCAPE)
        return int(digits, 16)

    def unicode_escape(self, scratch: bytearray) -> None:
        first = self.hex4()
        if 0xDC00 <= first <= 0xDFFF:
            raise self.error(LONE_LEADING_SURROGATE)
        if not 0xD800 <= first <= 0xDBFF:
            scratch += chr(first).encode("utf-8")
            return
        for expected in b"\\u":
            byte = self.peek()
            if byte is None:
                raise self.error(EOF_STRING)
            self.index += 1
            if byte != expected:
                raise self.error(UNEXPECTED_END_OF_HEX_ESCAPE)
        second = self.hex4()
        if not 0xDC00 <= second <= 0xDFFF:
            raise self.error(LONE_LEADING_SURROGATE)
        scratch += chr(0x10000 + ((first - 0xD800) << 10 | (second - 0xDC00))).encode("utf-8")

    # -- numbers -----------------------------------------------------------------

    def integer(self, positive: bool) -> int | float:
        byte = self.next()
        if byte is None:
            raise self.error(EOF_VALUE)
        if byte == ord("0"):
            if self.peek_digit() is not None:
                raise self.peek_error(INVALID_NUMBER)
            return self.number(positive, 0)
        if byte not in _DIGITS:
            raise self.error(INVALID_NUMBER)
        significand = byte - 48
        while (digit := self.peek_digit()) is not None:
            if _u64_overflows(significand, digit):
                return self.long_integer(positive, significand)
            self.index += 1
            significand = significand * 10 + digit
        return self.number(positive, significand)

    def number(self, positive: bool, significand: int) -> int | float:
        byte = self.peek()
        if byte == ord("."):
            return self.decimal(positive, significand, 0)
        if byte in (ord("e"), ord("E")):
            return self.exponent(positive, significand, 0)
        if positive:
            return significand
        # serde_json: `-0` and anything below i64::MIN become floats.
        if significand == 0 or significand > 2**63:
            return -float(significand)
        return -significand

    def decimal(self, positive: bool, significand: int, exponent_before: int) -> float:
        self.index += 1  # the '.'
        exponent_after = 0
        while (digit := self.peek_digit()) is not None:
            if _u64_overflows(significand, digit):
                return self.decimal_overflow(positive, significand, exponent_before + exponent_after)
            self.index += 1
            significand = significand * 10 + digit
            exponent_after -= 1
        if exponent_after == 0:
            raise self.peek_error(EOF_VALUE if self.peek() is None else INVALID_NUMBER)
        exponent = exponent_before + exponent_after
        if self.peek() in (ord("e"), ord("E")):
            return self.exponent(positive, significand, exponent)
        return self.f64_from_parts(positive, significand, exponent)

    def exponent(self, positive: bool, significand: int, starting_exponent: int) -> float:
        self.index += 1  # the 'e'
        positive_exponent = True
        if self.peek() in (ord("+"), ord("-")):
            positive_exponent = self.next() == ord("+")
        byte = self.next()
        if byte is None:
            raise self.error(EOF_VALUE)
        if byte not in _DIGITS:
            raise self.error(INVALID_NUMBER)
        exponent = byte - 48
        while (digit := self.peek_digit()) is not None:
            self.index += 1
            if exponent >= _I32_MAX // 10 and (exponent > _I32_MAX // 10 or digit > _I32_MAX % 10):
                return self.exponent_overflow(positive, significand == 0, positive_exponent)
            exponent = exponent * 10 + digit
        final = starting_exponent + exponent if positive_exponent else starting_exponent - exponent
        return self.f64_from_parts(positive, significand, _saturate_i32(final))

    def exponent_overflow(self, positive: bool, zero_significand: bool, positive_exponent: bool) -> float:
        if not zero_significand and positive_exponent:
            raise self.error(NUMBER_OUT_OF_RANGE)
        while self.peek_digit() is not None:
            self.index += 1
        return 0.0 if positive else -0.0

    def long_integer(self, positive: bool, significand: int) -> float:
        """An integer past u64: later digits only scale the significand."""
        exponent = 0
        while self.peek_digit() is not None:
            self.index += 1
            exponent += 1
        byte = self.peek()
        if byte == ord("."):
            return self.decimal(positive, significand, exponent)
        if byte in (ord("e"), ord("E")):
            return self.exponent(positive, significand, exponent)
        return self.f64_from_parts(positive, significand, exponent)

    def decimal_overflow(self, positive: bool, significand: int, exponent: int) -> float:
        while self.peek_digit() is not None:
            self.index += 1
        if self.peek() in (ord("e"), ord("E")):
            return self.exponent(positive, significand, exponent)
        return self.f64_from_parts(positive, significand, exponent)

    def f64_from_parts(self, positive: bool, significand: int, exponent: int) -> float:
        value = float(significand)
        while True:
            if abs(exponent) < len(_POW10):
                if exponent >= 0:
                    value *= _POW10[exponent]
                    if math.isinf(value):
                        raise self.error(NUMBER_OUT_OF_RANGE)
                else:
                    value /= _POW10[-exponent]
                break
            if value == 0.0:
                break
            if exponent >= 0:
                raise self.error(NUMBER_OUT_OF_RANGE)
            value /= 1e308
            exponent += 308
        return value if positive else -value


def parse(text: str) -> Any:
    """Parses a JSON text as serde_json does; raises `JsonError` with serde_json's message."""
    parser = _Parser(text.encode("utf-8"))
    value = parser.value()
    if parser.whitespace() is not None:
        raise parser.peek_error(TRAILING_CHARACTERS)
    return value


_STRING_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_STRING_ESCAPES.update({0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"})
_STRING_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})


def _quote(text: str) -> str:
    return '"' + text.translate(_STRING_ESCAPES) + '"'


def format_float(value: float) -> str:
    """A finite float as serde_json writes it (`1.0`, `0.00001`, `1e-6`, `1.5e+20`, `-0.0`)."""
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0.0:
        return sign + "0.0"
    # repr gives the shortest digits that round-trip; only their layout differs.
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    leading_zeros = len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits.strip("0")
    point = len(whole) + int(exp or 0) - leading_zeros  # digits before the decimal point
    exponent = point - 1  # of the first digit
    if -5 <= exponent <= 15:
        if len(digits) <= point:
            return sign + digits + "0" * (point - len(digits)) + ".0"
        if point > 0:
            return sign + digits[:point] + "." + digits[point:]
        return sign + "0." + "0" * -point + digits
    head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{head}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def dumps(value: Any) -> str:
    """Compact JSON as serde_json writes it; dicts in insertion order."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(format_float(value) if math.isfinite(value) else "null")
    elif isinstance(value, str):
        out.append(_quote(value))
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(_quote(key))
            out.append(":")
            _write(item, out)
        out.append("}")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")
