"""The Logging query language, as far as gcloud, ./deploy.sh and the log-based metrics use it.

Comparisons of a field path with a value: `a.b="x"`, `severity>=ERROR`, `jsonPayload.rows>0`,
`jsonPayload.x:*` (the field is present), `labels."k8s-pod/app"="web"` (a quoted segment), with the
operators = != > >= < <= and : ("has"); values quoted, bare words or numbers. Expressions join them
with AND (or by juxtaposition), OR and NOT, grouped by parentheses; as in Cloud Logging, NOT binds
tightest, then OR, then AND. A value is read as the field's type: a number field compares numbers,
`severity` compares levels, `timestamp` compares instants. Anything else is refused with 400, as the
real API refuses a query it cannot parse.
"""

import datetime
import re

from tests.fakes.google_api import ApiError

SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
_TIMES = ("timestamp", "receiveTimestamp")
_MISSING = object()
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_SPACE = re.compile(r"\s*")
_PATH = re.compile(rf"(?:[A-Za-z_]\w*|{_QUOTED})(?:\.(?:[A-Za-z_]\w*|{_QUOTED}))*")
_OPERATOR = re.compile(r">=|<=|!=|=|>|<|:")
_VALUE = re.compile(rf'{_QUOTED}|[^\s()"]+')
_KEYWORD = re.compile(r"(AND|OR|NOT)(?=[\s(]|$)")


def _segments(path):
    """A field path's parts: `labels."k8s-pod/app"` is ("labels", "k8s-pod/app")."""
    return tuple(_unquote(part) for part in re.findall(rf"{_QUOTED}|[^.]+", path))


def _unquote(text):
    return re.sub(r"\\(.)", r"\1", text[1:-1]) if text.startswith('"') else text


class _Parser:
    def __init__(self, text):
        self.text, self.at = text, 0

    def _skip(self):
        self.at = _SPACE.match(self.text, self.at).end()

    def _take(self, pattern):
        self._skip()
        match = pattern.match(self.text, self.at)
        if match:
            self.at = match.end()
        return match

    def _keyword(self, word):
        self._skip()
        match = _KEYWORD.match(self.text, self.at)
        if match and match.group(1) == word:
            self.at = match.end()
            return True
        return False

    def _fail(self, what):
        raise ApiError(400, f"Unparseable filter: expected {what} at {self.text[self.at:self.at + 40]!r} "
                            f"in {self.text!r}")

    def _at_end(self):
        self._skip()
        return self.at == len(self.text) or self.text[self.at] == ")"

    def conjunction(self):
        terms = [self.disjunction()]
        while not self._at_end():
            self._keyword("AND")  # juxtaposed terms are joined by AND too
            terms.append(self.disjunction())
        return terms[0] if len(terms) == 1 else ("and", terms)

    def disjunction(self):
        terms = [self.negation()]
        while self._keyword("OR"):
            terms.append(self.negation())
        return terms[0] if len(terms) == 1 else ("or", terms)

    def negation(self):
        if self._keyword("NOT"):
            return ("not", self.negation())
        self._skip()
        if self.text.startswith("(", self.at):
            self.at += 1
            inner = self.conjunction()
            if not self.text.startswith(")", self.at):
                self._fail("')'")
            self.at += 1
            return inner
        return self.comparison()

    def comparison(self):
        path = self._take(_PATH)
        if not path or _KEYWORD.fullmatch(path.group(0)):
            self._fail("a field path")
        operator = self._take(_OPERATOR)
        if not operator:
            self._fail("a comparison operator (bare words are not searched here)")
        value = self._take(_VALUE)
        if not value:
            self._fail("a value")
        parts = _segments(path.group(0))
        raw = value.group(0)
        return ("compare", parts, operator.group(0), _unquote(raw), raw.startswith('"'))


def parse(text):
    """The query as a tree; raises ApiError(400) on anything this language does not have."""
    if not (text or "").strip():
        return ("and", [])
    parser = _Parser(text)
    tree = parser.conjunction()
    if parser.at != len(parser.text):
        parser._fail("the end of the filter")
    _check(tree)
    return tree


def _check(tree):
    """Values that can never compare (an unknown level, a malformed time) are refused up front."""
    kind, *rest = tree
    if kind in ("and", "or"):
        for term in rest[0]:
            _check(term)
    elif kind == "not":
        _check(rest[0])
    else:
        parts, operator, value, _ = rest
        if operator != ":" and parts == ("severity",):
            _level(value)
        if operator != ":" and len(parts) == 1 and parts[0] in _TIMES:
            _instant(value)


def field(entry, path):
    """The value at a field path (text, or parts already split) of a LogEntry; _MISSING if absent."""
    value = entry
    for part in _segments(path) if isinstance(path, str) else path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def present(value):
    return value is not _MISSING


def _level(value):
    if value.upper() not in SEVERITIES:
        raise ApiError(400, f"Unknown severity in filter: {value!r}")
    return SEVERITIES.index(value.upper())


def _instant(value):
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Invalid timestamp in filter: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _number(value):
    try:
        return float(value)
    except ValueError:
        return None


def _compare(left, operator, right):
    return {"=": left == right, "!=": left != right, ">": left > right, ">=": left >= right,
            "<": left < right, "<=": left <= right}[operator]


def _holds(actual, parts, operator, wanted, quoted):
    if operator == ":" and wanted == "*" and not quoted:
        return present(actual)
    if not present(actual) or isinstance(actual, dict):
        return operator == "!="
    if isinstance(actual, list):  # a repeated field matches when any of its values does
        return any(_holds(item, parts, operator, wanted, quoted) for item in actual)
    if operator == ":":
        text = ("true" if actual else "false") if isinstance(actual, bool) else str(actual)
        return wanted.lower() in text.lower()
    if parts == ("severity",):
        return _compare(_level(str(actual)), operator, _level(wanted))
    if len(parts) == 1 and parts[0] in _TIMES:
        return _compare(_instant(str(actual)), operator, _instant(wanted))
    if isinstance(actual, bool):
        return _compare("true" if actual else "false", operator, wanted.lower())
    if isinstance(actual, (int, float)):
        number = _number(wanted)
        return number is not None and _compare(float(actual), operator, number)
    return _compare(str(actual), operator, wanted)


def matches(tree, entry):
    kind, *rest = tree
    if kind == "and":
        return all(matches(term, entry) for term in rest[0])
    if kind == "or":
        return any(matches(term, entry) for term in rest[0])
    if kind == "not":
        return not matches(rest[0], entry)
    parts, operator, wanted, quoted = rest
    return _holds(field(entry, parts), parts, operator, wanted, quoted)


def selects(text, entry):
    """True when the LogEntry `entry` matches the query `text`."""
    return matches(parse(text), entry)
