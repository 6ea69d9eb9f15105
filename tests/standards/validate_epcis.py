#!/usr/bin/env python3
"""Validates EPCIS 2.0 JSON(-LD) documents against GS1's EPCIS 2.0 JSON
schema (gs1/EPCISDocument.schema.json, see gs1/README.md) with format
checking.

Usage: validate_epcis.py FILE...
Exit 0: all valid. 1: some invalid (errors on stdout). 2: the validator
cannot check formats (jsonschema or its URI/date-time checkers missing).
"""
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    print("python3 jsonschema is missing: pip install 'jsonschema[format-nongpl]'")
    sys.exit(2)

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "gs1", "EPCISDocument.schema.json")) as f:
    schema = json.load(f)
checker = jsonschema.Draft7Validator.FORMAT_CHECKER
missing = [f for f in ("uri", "date-time") if f not in checker.checkers]
if missing:
    print("jsonschema cannot check the formats %s: pip install 'jsonschema[format-nongpl]'" % missing)
    sys.exit(2)
validator = jsonschema.Draft7Validator(schema, format_checker=checker)

# The validator must refuse what GS1's schema refuses (a free-text
# readPoint), or a pass below would mean nothing.
probe = {
    "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
    "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-01-01T00:00:00Z",
    "epcisBody": {"eventList": [{
        "type": "ObjectEvent", "eventTime": "2026-01-01T00:00:00Z", "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE", "epcList": ["https://id.gs1.org/01/09521234543213/21/1"],
        "readPoint": {"id": "line 1"}}]},
}
if validator.is_valid(probe):
    print("the validator accepts a free-text readPoint: format checking is not working")
    sys.exit(2)

bad = 0
for path in sys.argv[1:]:
    with open(path) as f:
        doc = json.load(f)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors:
        bad += 1
        where = "/".join(str(p) for p in e.absolute_path)
        print("%s: %s: %s" % (path, where or "(document)", e.message))
sys.exit(1 if bad else 0)
