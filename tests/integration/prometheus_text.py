"""A strict parser of Prometheus' text exposition format (version 0.0.4), for the metrics tests.

    families = parse(text)          # raises FormatError naming the line on any deviation
    families["sluice_x"].type       # counter | gauge | histogram | summary | untyped
    value(families, "sluice_x_total", api="Produce")   # one sample's value, or None

Checked, as Prometheus' own parser does and more: the text ends with a line feed; comments are
`# HELP name text` or `# TYPE name type` (or free text); a family's TYPE appears once and before
its samples, and its samples are contiguous; metric and label names match their grammars; label
values are quoted with only \\\\, \\" and \\n escapes; values are Go floats (NaN, +Inf, -Inf
included); no series appears twice; counters are not negative; a histogram has _bucket series with
an `le` label whose counts never decrease, a +Inf bucket equal to _count, and _sum and _count."""
import math
import re

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
FLOAT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class FormatError(Exception):
    pass


class Family:
    def __init__(self, name, type_):
        self.name = name
        self.type = type_
        self.help = None
        self.samples = []  # (series name, labels dict, value)


def _parse_float(text, where):
    if text in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not FLOAT.fullmatch(text):
        raise FormatError("%s: bad value %r" % (where, text))
    return float(text)


def _parse_labels(text, pos, where):
    """Parses `{name="value",...}` from text[pos] == '{'; returns (labels, position after '}')."""
    labels = {}
    pos += 1
    while True:
        if pos < len(text) and text[pos] == "}":
            return labels, pos + 1
        match = LABEL_NAME.match(text, pos)
        if not match:
            raise FormatError("%s: bad label name at column %d" % (where, pos + 1))
        name = match.group(0)
        pos = match.end()
        if text[pos:pos + 2] != '="':
            raise FormatError("%s: expected =\" after label %s" % (where, name))
        pos += 2
        value = []
        while True:
            if pos >= len(text):
                raise FormatError("%s: unterminated value of label %s" % (where, name))
            c = text[pos]
            if c == "\\":
                escaped = text[pos + 1:pos + 2]
                if escaped not in ("\\", '"', "n"):
                    raise FormatError("%s: bad escape \\%s in label %s" % (where, escaped, name))
                value.append("\n" if escaped == "n" else escaped)
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                raise FormatError("%s: raw line feed in label %s" % (where, name))
            else:
                value.append(c)
                pos += 1
        if name in labels:
            raise FormatError("%s: label %s given twice" % (where, name))
        labels[name] = "".join(value)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "}":
            return labels, pos + 1
        raise FormatError("%s: expected , or } after label %s" % (where, name))


def _family_of(series, families):
    for suffix in ("_bucket", "_sum", "_count"):
        if series.endswith(suffix):
            base = series[: -len(suffix)]
            if base in families and families[base].type in ("histogram", "summary"):
                return base
    return series


def parse(text):
    if not text.endswith("\n"):
        raise FormatError("the exposition does not end with a line feed")
    families = {}
    seen_series = set()
    finished = set()  # families whose samples have ended (another family's followed)
    current = None
    for number, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d (%r)" % (number, line[:120])
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not METRIC_NAME.fullmatch(parts[2]):
                    raise FormatError("%s: bad metric name in %s" % (where, parts[1]))
                name = parts[2]
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise FormatError("%s: bad type" % where)
                    if name in families and families[name].type is not None:
                        raise FormatError("%s: second TYPE for %s" % (where, name))
                    if name in families and families[name].samples:
                        raise FormatError("%s: TYPE after samples of %s" % (where, name))
                    families.setdefault(name, Family(name, None)).type = parts[3]
                else:
                    family = families.setdefault(name, Family(name, None))
                    if family.help is not None:
                        raise FormatError("%s: second HELP for %s" % (where, name))
                    family.help = parts[3] if len(parts) == 4 else ""
            continue
        match = METRIC_NAME.match(line)
        if not match:
            raise FormatError("%s: bad metric name" % where)
        series = match.group(0)
        pos = match.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = _parse_labels(line, pos, where)
        rest = line[pos:]
        if not rest.startswith(" "):
            raise FormatError("%s: expected a space before the value" % where)
        fields = rest.split()
        if len(fields) not in (1, 2) or rest != " " + " ".join(fields):
            raise FormatError("%s: expected `value [timestamp]`" % where)
        sample_value = _parse_float(fields[0], where)
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            raise FormatError("%s: bad timestamp" % where)
        name = _family_of(series, families)
        family = families.setdefault(name, Family(name, None))
        if family.type is None:
            family.type = "untyped"
        if current != name:
            if name in finished:
                raise FormatError("%s: samples of %s are not contiguous" % (where, name))
            if current is not None:
                finished.add(current)
            current = name
        key = (series, tuple(sorted(labels.items())))
        if key in seen_series:
            raise FormatError("%s: series given twice" % where)
        seen_series.add(key)
        if family.type == "counter" and sample_value < 0:
            raise FormatError("%s: negative counter" % where)
        family.samples.append((series, labels, sample_value))
    for family in families.values():
        if family.type == "histogram":
            _check_histogram(family)
    return families


def _check_histogram(family):
    groups = {}
    for series, labels, sample_value in family.samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        group = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if series == family.name + "_bucket":
            if "le" not in labels:
                raise FormatError("%s: a bucket without le" % family.name)
            group["buckets"].append((_parse_float(labels["le"], family.name), sample_value))
        elif series == family.name + "_sum":
            group["sum"] = sample_value
        elif series == family.name + "_count":
            group["count"] = sample_value
        else:
            raise FormatError("%s: unexpected series %s in a histogram" % (family.name, series))
    for rest, group in groups.items():
        where = "%s%s" % (family.name, dict(rest))
        buckets = sorted(group["buckets"])
        if not buckets or not math.isinf(buckets[-1][0]):
            raise FormatError("%s: no +Inf bucket" % where)
        if group["sum"] is None or group["count"] is None:
            raise FormatError("%s: _sum or _count missing" % where)
        counts = [count for _, count in buckets]
        if counts != sorted(counts):
            raise FormatError("%s: bucket counts decrease" % where)
        if counts[-1] != group["count"]:
            raise FormatError("%s: +Inf bucket %s != _count %s" % (where, counts[-1], group["count"]))


def value(families, series, **labels):
    """The value of the one sample named `series` whose labels include `labels`, else None."""
    name = _family_of(series, families)
    family = families.get(name)
    if family is None:
        return None
    found = [v for s, l, v in family.samples
             if s == series and all(l.get(k) == str(want) for k, want in labels.items())]
    if len(found) > 1:
        raise AssertionError("%d samples of %s match %s" % (len(found), series, labels))
    return found[0] if found else None


def self_test():
    """The parser refuses what it must (run by the metrics test before it trusts the parser)."""
    good = ('# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3\n'
            '# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.7\nh_count 2\n')
    parse(good)
    bad = {
        "no final line feed": good[:-1],
        "bad value": "# TYPE a gauge\na 1x\n",
        "bad escape": '# TYPE a gauge\na{x="\\t"} 1\n',
        "unterminated label": '# TYPE a gauge\na{x="1} 1\n',
        "duplicate series": "# TYPE a gauge\na 1\na 2\n",
        "TYPE after samples": "a 1\n# TYPE a gauge\n",
        "second TYPE": "# TYPE a gauge\n# TYPE a counter\na 1\n",
        "unknown type": "# TYPE a meter\na 1\n",
        "not contiguous": "# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"2\"} 1\n",
        "negative counter": "# TYPE a_total counter\na_total -1\n",
        "decreasing buckets": '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        "no +Inf bucket": '# TYPE h histogram\nh_bucket{le="1"} 2\nh_sum 1\nh_count 2\n',
        "+Inf != count": '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
        "bad metric name": "# TYPE 1a gauge\n1a 1\n",
        "two spaces": "# TYPE a gauge\na  1\n",
    }
    for what, text in bad.items():
        try:
            parse(text)
        except FormatError:
            continue
        raise AssertionError("the parser accepted an exposition with " + what)
