// @ts-check
/**
 * JSON texts read and written exactly as the Rust v2 mapper does (serde_json 1.0, `Value`).
 *
 * The host compares the envelopes of the Rust, Python and JavaScript v2 mappers for
 * equality, and the payload embeds each change's old and new values *parsed* from JSON
 * texts. So this module reproduces serde_json's observable behaviour rather than
 * `JSON.parse`/`JSON.stringify`:
 *
 * - `parse` accepts exactly what `serde_json::from_str::<Value>` accepts and, on failure,
 *   throws a `JsonError` whose message is serde_json's (`expected value at line 1 column 1`),
 *   positions counted in UTF-8 bytes, recursion limited to 127 nested arrays/objects.
 * - Numbers: integers that fit `u64` (or `i64` when negative) become `bigint`s; everything
 *   else becomes a `JsonFloat`, computed the way serde_json does without its
 *   `float_roundtrip` feature (`significand * 10^exp` in double precision, digits past
 *   `u64` ignored), so it can differ from `Number()` in the last bit; `-0` is a float.
 * - Objects become `Map`s with keys sorted by code point (serde_json's `BTreeMap`); a
 *   repeated key keeps its last value.
 * - `stringify` writes compact JSON with serde_json's escaping and float format. It takes
 *   parsed values and plain data: `null`, booleans, strings, `bigint`s and integral
 *   `number`s (integers), `JsonFloat`s, arrays, `Map`s and plain objects (in key order;
 *   their keys must not look like array indices, which JS would reorder).
 *
 * @typedef {null | boolean | string | bigint | number | JsonFloat | JsonValue[] | Map<string, JsonValue> | {[key: string]: JsonValue}} JsonValue
 */

// serde_json's error texts (serde_json::error::ErrorCode's Display).
const EOF_LIST = 'EOF while parsing a list';
const EOF_OBJECT = 'EOF while parsing an object';
const EOF_STRING = 'EOF while parsing a string';
const EOF_VALUE = 'EOF while parsing a value';
const EXPECTED_COLON = 'expected `:`';
const EXPECTED_LIST_COMMA_OR_END = 'expected `,` or `]`';
const EXPECTED_OBJECT_COMMA_OR_END = 'expected `,` or `}`';
const EXPECTED_IDENT = 'expected ident';
const EXPECTED_VALUE = 'expected value';
const INVALID_ESCAPE = 'invalid escape';
const INVALID_NUMBER = 'invalid number';
const NUMBER_OUT_OF_RANGE = 'number out of range';
const CONTROL_CHARACTER = 'control character (\\u0000-\\u001F) found while parsing a string';
const KEY_MUST_BE_A_STRING = 'key must be a string';
const LONE_LEADING_SURROGATE = 'lone leading surrogate in hex escape';
const TRAILING_COMMA = 'trailing comma';
const TRAILING_CHARACTERS = 'trailing characters';
const UNEXPECTED_END_OF_HEX_ESCAPE = 'unexpected end of hex escape';
const RECURSION_LIMIT = 'recursion limit exceeded';

/** A JSON text serde_json would refuse; `message` is serde_json's. */
export class JsonError extends Error {
  /**
   * @param {string} code serde_json's description, e.g. `expected value`
   * @param {number} line 1-based
   * @param {number} column in UTF-8 bytes
   */
  constructor(code, line, column) {
    super(`${code} at line ${line} column ${column}`);
    this.name = 'JsonError';
    this.code = code;
    this.line = line;
    this.column = column;
  }
}

/** A JSON number serde_json holds as an `f64` (written `1.0`, `1e+20`, `-0.0`). */
export class JsonFloat {
  /** @param {number} value */
  constructor(value) {
    this.value = value;
  }
}

const U64_MAX = (1n << 64n) - 1n;
const U64_MAX_DIV_10 = U64_MAX / 10n;
const U64_MAX_MOD_10 = U64_MAX % 10n;
const I64_MIN_MAGNITUDE = 1n << 63n;
const I32_MAX = 2 ** 31 - 1;
const I32_MIN = -(2 ** 31);
const POW10 = Array.from({ length: 309 }, (_, i) => Number(`1e${i}`));

const [QUOTE, BACKSLASH, SLASH] = [0x22, 0x5c, 0x2f];
const [OPEN_BRACKET, CLOSE_BRACKET, OPEN_BRACE, CLOSE_BRACE] = [0x5b, 0x5d, 0x7b, 0x7d];
const [COMMA, COLON, MINUS, PLUS, DOT, ZERO] = [0x2c, 0x3a, 0x2d, 0x2b, 0x2e, 0x30];
const [LOWER_E, UPPER_E, LOWER_U] = [0x65, 0x45, 0x75];
/** @type {Record<number, number>} the one-character escapes and what they stand for */
const SHORT_ESCAPES = {
  [QUOTE]: QUOTE, [BACKSLASH]: BACKSLASH, [SLASH]: SLASH,
  0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

/** @param {number | undefined} byte */
const isDigit = (byte) => byte !== undefined && byte >= 0x30 && byte <= 0x39;
/** @param {number | undefined} byte */
const isExponent = (byte) => byte === LOWER_E || byte === UPPER_E;
/** @param {number} byte */
const isWhitespace = (byte) => byte === 0x20 || byte === 0x0a || byte === 0x09 || byte === 0x0d;
/** @param {number} byte */
const hexValue = (byte) => {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  return -1;
};
/** @param {bigint} value @param {bigint} digit */
const u64Overflows = (value, digit) =>
  value >= U64_MAX_DIV_10 && (value > U64_MAX_DIV_10 || digit > U64_MAX_MOD_10);

/**
 * Compares strings by code point, as Rust compares `String`s (UTF-8 bytes); JavaScript's
 * default order (UTF-16 code units) differs for characters past U+FFFF.
 * @param {string} a @param {string} b
 */
export function compareCodePoints(a, b) {
  const x = a[Symbol.iterator]();
  const y = b[Symbol.iterator]();
  for (;;) {
    const p = x.next();
    const q = y.next();
    if (p.done || q.done) return p.done ? (q.done ? 0 : -1) : 1;
    const d = /** @type {number} */ (p.value.codePointAt(0)) - /** @type {number} */ (q.value.codePointAt(0));
    if (d !== 0) return d;
  }
}

/** A port of serde_json's `Deserializer<StrRead>` for `Value`, over UTF-8 bytes. */
class Parser {
  /** @param {Uint8Array} data */
  constructor(data) {
    this.data = data;
    this.index = 0;
    this.remainingDepth = 128;
  }

  // -- reading --------------------------------------------------------------

  /** @returns {number | undefined} */
  peek() {
    return this.data[this.index];
  }

  next() {
    const byte = this.peek();
    if (byte !== undefined) this.index += 1;
    return byte;
  }

  /** Skips whitespace; returns the next byte, not consumed, or undefined at the end. */
  whitespace() {
    let byte;
    while ((byte = this.peek()) !== undefined && isWhitespace(byte)) this.index += 1;
    return byte;
  }

  // -- errors: `error` points at the byte just read, `peekError` at the next ----

  /** @param {string} code @param {number} index */
  at(code, index) {
    let start = index;
    while (start > 0 && this.data[start - 1] !== 0x0a) start -= 1;
    let line = 1;
    for (let i = 0; i < start; i++) if (this.data[i] === 0x0a) line += 1;
    return new JsonError(code, line, index - start);
  }

  /** @param {string} code */
  error(code) {
    return this.at(code, this.index);
  }

  /** @param {string} code */
  peekError(code) {
    return this.at(code, Math.min(this.data.length, this.index + 1));
  }

  // -- values ---------------------------------------------------------------

  /** @returns {JsonValue} */
  value() {
    const byte = this.whitespace();
    if (byte === undefined) throw this.peekError(EOF_VALUE);
    switch (byte) {
      case 0x6e: // n
        this.index += 1;
        this.ident('ull');
        return null;
      case 0x74: // t
        this.index += 1;
        this.ident('rue');
        return true;
      case 0x66: // f
        this.index += 1;
        this.ident('alse');
        return false;
      case MINUS:
        this.index += 1;
        return this.integer(false);
      case QUOTE:
        this.index += 1;
        return this.string();
      case OPEN_BRACKET:
      case OPEN_BRACE: {
        this.remainingDepth -= 1;
        if (this.remainingDepth === 0) throw this.peekError(RECURSION_LIMIT);
        this.index += 1;
        const result = byte === OPEN_BRACKET ? this.array() : this.object();
        this.remainingDepth += 1;
        this.index += 1; // the closing bracket the loop stopped at
        return result;
      }
      default:
        if (isDigit(byte)) return this.integer(true);
        throw this.peekError(EXPECTED_VALUE);
    }
  }

  /** @param {string} rest */
  ident(rest) {
    for (const expected of rest) {
      const byte = this.next();
      if (byte === undefined) throw this.error(EOF_VALUE);
      if (byte !== expected.charCodeAt(0)) throw this.error(EXPECTED_IDENT);
    }
  }

  array() {
    /** @type {JsonValue[]} */
    const items = [];
    for (;;) {
      let byte = this.whitespace();
      if (byte === undefined) throw this.peekError(EOF_LIST);
      if (byte === CLOSE_BRACKET) return items;
      if (items.length > 0) {
        if (byte !== COMMA) throw this.peekError(EXPECTED_LIST_COMMA_OR_END);
        this.index += 1;
        byte = this.whitespace();
        if (byte === CLOSE_BRACKET) throw this.peekError(TRAILING_COMMA);
        if (byte === undefined) throw this.peekError(EOF_VALUE);
      }
      items.push(this.value());
    }
  }

  object() {
    /** @type {Map<string, JsonValue>} */
    const entries = new Map();
    let first = true;
    for (;;) {
      let byte = this.whitespace();
      if (byte === undefined) throw this.peekError(EOF_OBJECT);
      if (byte === CLOSE_BRACE) {
        const keys = [...entries.keys()].sort(compareCodePoints);
        return new Map(keys.map((key) => [key, /** @type {JsonValue} */ (entries.get(key))]));
      }
      if (first) {
        first = false;
        if (byte !== QUOTE) throw this.peekError(KEY_MUST_BE_A_STRING);
      } else if (byte === COMMA) {
        this.index += 1;
        byte = this.whitespace();
        if (byte === CLOSE_BRACE) throw this.peekError(TRAILING_COMMA);
        if (byte === undefined) throw this.peekError(EOF_VALUE);
        if (byte !== QUOTE) throw this.peekError(KEY_MUST_BE_A_STRING);
      } else {
        throw this.peekError(EXPECTED_OBJECT_COMMA_OR_END);
      }
      this.index += 1;
      const key = this.string();
      byte = this.whitespace();
      if (byte === undefined) throw this.peekError(EOF_OBJECT);
      if (byte !== COLON) throw this.peekError(EXPECTED_COLON);
      this.index += 1;
      entries.set(key, this.value());
    }
  }

  // -- strings ----------------------------------------------------------------

  /** The rest of a string whose opening quote was consumed. */
  string() {
    /** @type {number[]} UTF-8 bytes of the escapes; the plain runs are sliced */
    const parts = [];
    /** @type {Uint8Array[]} */
    const chunks = [];
    for (;;) {
      const start = this.index;
      let byte;
      while ((byte = this.peek()) !== undefined && byte !== QUOTE && byte !== BACKSLASH && byte >= 0x20) {
        this.index += 1;
      }
      chunks.push(this.data.subarray(start, this.index));
      if (byte === undefined) throw this.error(EOF_STRING);
      this.index += 1;
      if (byte === QUOTE) break;
      if (byte !== BACKSLASH) throw this.error(CONTROL_CHARACTER);
      parts.length = 0;
      this.escape(parts);
      chunks.push(Uint8Array.from(parts));
    }
    if (chunks.length === 1) return decoder.decode(chunks[0]);
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    return decoder.decode(bytes);
  }

  nextInString() {
    const byte = this.next();
    if (byte === undefined) throw this.error(EOF_STRING);
    return byte;
  }

  /** @param {number[]} out */
  escape(out) {
    const byte = this.nextInString();
    if (byte in SHORT_ESCAPES) out.push(SHORT_ESCAPES[byte]);
    else if (byte === LOWER_U) this.unicodeEscape(out);
    else throw this.error(INVALID_ESCAPE);
  }

  hex4() {
    if (this.data.length - this.index < 4) {
      this.index = this.data.length;
      throw this.error(EOF_STRING);
    }
    let value = 0;
    let valid = true;
    for (let i = 0; i < 4; i++) {
      const digit = hexValue(this.data[this.index + i]);
      valid &&= digit >= 0;
      value = value * 16 + digit;
    }
    this.index += 4;
    if (!valid) throw this.error(INVALID_ESCAPE);
    return value;
  }

  /** @param {number[]} out */
  unicodeEscape(out) {
    const first = this.hex4();
    if (first >= 0xdc00 && first <= 0xdfff) throw this.error(LONE_LEADING_SURROGATE);
    let codePoint = first;
    if (first >= 0xd800 && first <= 0xdbff) {
      for (const expected of [BACKSLASH, LOWER_U]) {
        const byte = this.peek();
        if (byte === undefined) throw this.error(EOF_STRING);
        this.index += 1;
        if (byte !== expected) throw this.error(UNEXPECTED_END_OF_HEX_ESCAPE);
      }
      const second = this.hex4();
      if (second < 0xdc00 || second > 0xdfff) throw this.error(LONE_LEADING_SURROGATE);
      codePoint = 0x10000 + (((first - 0xd800) << 10) | (second - 0xdc00));
    }
    out.push(...encoder.encode(String.fromCodePoint(codePoint)));
  }

  // -- numbers ----------------------------------------------------------------

  /** @param {boolean} positive @returns {bigint | JsonFloat} */
  integer(positive) {
    const byte = this.next();
    if (byte === undefined) throw this.error(EOF_VALUE);
    if (byte === ZERO) {
      if (isDigit(this.peek())) throw this.peekError(INVALID_NUMBER);
      return this.number(positive, 0n);
    }
    if (!isDigit(byte)) throw this.error(INVALID_NUMBER);
    let significand = BigInt(byte - ZERO);
    let next;
    while (isDigit((next = this.peek()))) {
      const digit = BigInt(/** @type {number} */ (next) - ZERO);
      if (u64Overflows(significand, digit)) return this.longInteger(positive, significand);
      this.index += 1;
      significand = significand * 10n + digit;
    }
    return this.number(positive, significand);
  }

  /** @param {boolean} positive @param {bigint} significand @returns {bigint | JsonFloat} */
  number(positive, significand) {
    const byte = this.peek();
    if (byte === DOT) return this.decimal(positive, significand, 0);
    if (isExponent(byte)) return this.exponent(positive, significand, 0);
    if (positive) return significand;
    // serde_json: `-0` and anything below i64::MIN become floats.
    if (significand === 0n || significand > I64_MIN_MAGNITUDE) return new JsonFloat(-Number(significand));
    return -significand;
  }

  /** @param {boolean} positive @param {bigint} significand @param {number} exponentBefore */
  decimal(positive, significand, exponentBefore) {
    this.index += 1; // the '.'
    let exponentAfter = 0;
    let next;
    while (isDigit((next = this.peek()))) {
      const digit = BigInt(/** @type {number} */ (next) - ZERO);
      if (u64Overflows(significand, digit)) {
        return this.decimalOverflow(positive, significand, exponentBefore + exponentAfter);
      }
      this.index += 1;
      significand = significand * 10n + digit;
      exponentAfter -= 1;
    }
    if (exponentAfter === 0) {
      throw this.peekError(this.peek() === undefined ? EOF_VALUE : INVALID_NUMBER);
    }
    const exponent = exponentBefore + exponentAfter;
    if (isExponent(this.peek())) return this.exponent(positive, significand, exponent);
    return this.f64FromParts(positive, significand, exponent);
  }

  /** @param {boolean} positive @param {bigint} significand @param {number} startingExponent */
  exponent(positive, significand, startingExponent) {
    this.index += 1; // the 'e'
    let positiveExponent = true;
    const sign = this.peek();
    if (sign === PLUS || sign === MINUS) {
      this.index += 1;
      positiveExponent = sign === PLUS;
    }
    const byte = this.next();
    if (byte === undefined) throw this.error(EOF_VALUE);
    if (!isDigit(byte)) throw this.error(INVALID_NUMBER);
    let exponent = byte - ZERO;
    let next;
    while (isDigit((next = this.peek()))) {
      this.index += 1;
      const digit = /** @type {number} */ (next) - ZERO;
      const limit = Math.floor(I32_MAX / 10);
      if (exponent >= limit && (exponent > limit || digit > I32_MAX % 10)) {
        return this.exponentOverflow(positive, significand === 0n, positiveExponent);
      }
      exponent = exponent * 10 + digit;
    }
    const final = positiveExponent ? startingExponent + exponent : startingExponent - exponent;
    return this.f64FromParts(positive, significand, Math.max(I32_MIN, Math.min(I32_MAX, final)));
  }

  /** @param {boolean} positive @param {boolean} zeroSignificand @param {boolean} positiveExponent */
  exponentOverflow(positive, zeroSignificand, positiveExponent) {
    if (!zeroSignificand && positiveExponent) throw this.error(NUMBER_OUT_OF_RANGE);
    while (isDigit(this.peek())) this.index += 1;
    return new JsonFloat(positive ? 0 : -0);
  }

  /** An integer past u64: later digits only scale the significand. */
  /** @param {boolean} positive @param {bigint} significand */
  longInteger(positive, significand) {
    let exponent = 0;
    while (isDigit(this.peek())) {
      this.index += 1;
      exponent += 1;
    }
    const byte = this.peek();
    if (byte === DOT) return this.decimal(positive, significand, exponent);
    if (isExponent(byte)) return this.exponent(positive, significand, exponent);
    return this.f64FromParts(positive, significand, exponent);
  }

  /** @param {boolean} positive @param {bigint} significand @param {number} exponent */
  decimalOverflow(positive, significand, exponent) {
    while (isDigit(this.peek())) this.index += 1;
    if (isExponent(this.peek())) return this.exponent(positive, significand, exponent);
    return this.f64FromParts(positive, significand, exponent);
  }

  /** @param {boolean} positive @param {bigint} significand @param {number} exponent */
  f64FromParts(positive, significand, exponent) {
    let value = Number(significand); // rounds to nearest, like Rust's `u64 as f64`
    for (;;) {
      if (Math.abs(exponent) < POW10.length) {
        if (exponent >= 0) {
          value *= POW10[exponent];
          if (!Number.isFinite(value)) throw this.error(NUMBER_OUT_OF_RANGE);
        } else {
          value /= POW10[-exponent];
        }
        break;
      }
      if (value === 0) break;
      if (exponent >= 0) throw this.error(NUMBER_OUT_OF_RANGE);
      value /= 1e308;
      exponent += 308;
    }
    return new JsonFloat(positive ? value : -value);
  }
}

/**
 * Parses a JSON text as serde_json does; throws a `JsonError` with serde_json's message.
 * @param {string} text
 * @returns {JsonValue}
 */
export function parse(text) {
  const parser = new Parser(encoder.encode(text));
  const value = parser.value();
  if (parser.whitespace() !== undefined) throw parser.peekError(TRAILING_CHARACTERS);
  return value;
}

/**
 * A finite number as serde_json writes an `f64`: `1.0`, `0.00001`, `1e-6`, `1.5e+20`, `-0.0`.
 * @param {number} value
 */
export function formatFloat(value) {
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  if (value === 0) return `${sign}0.0`;
  // `String(number)` gives the shortest digits that round-trip; only their layout differs.
  const [mantissa, exp = '0'] = String(Math.abs(value)).split('e');
  const [whole, fraction = ''] = mantissa.split('.');
  const allDigits = whole + fraction;
  const leadingZeros = allDigits.length - allDigits.replace(/^0+/, '').length;
  const digits = allDigits.replace(/^0+/, '').replace(/0+$/, '');
  const point = whole.length + Number(exp) - leadingZeros; // digits before the decimal point
  const exponent = point - 1; // of the first digit
  if (exponent >= -5 && exponent <= 15) {
    if (digits.length <= point) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
    if (point > 0) return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
    return `${sign}0.${'0'.repeat(-point)}${digits}`;
  }
  const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${head}e${exponent >= 0 ? '+' : '-'}${Math.abs(exponent)}`;
}

/** @param {string} text */
function quote(text) {
  // eslint-disable-next-line no-control-regex
  return `"${text.replace(/["\\\u0000-\u001f]/g, (c) => {
    switch (c) {
      case '"': return '\\"';
      case '\\': return '\\\\';
      case '\b': return '\\b';
      case '\t': return '\\t';
      case '\n': return '\\n';
      case '\f': return '\\f';
      case '\r': return '\\r';
      default: return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    }
  })}"`;
}

/**
 * Compact JSON as serde_json writes it.
 * @param {JsonValue} value
 * @returns {string}
 */
export function stringify(value) {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`${value} is not an integer; wrap floats in JsonFloat`);
      return String(value);
    case 'string':
      return quote(value);
    default:
      break;
  }
  if (value instanceof JsonFloat) {
    return Number.isFinite(value.value) ? formatFloat(value.value) : 'null';
  }
  if (Array.isArray(value)) return `[${value.map(stringify).join(',')}]`;
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return `{${entries.map(([key, item]) => `${quote(key)}:${stringify(item)}`).join(',')}}`;
}
