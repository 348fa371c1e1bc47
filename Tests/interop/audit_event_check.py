"""Checks Writ's audit events with third-party code: each is valid against
docs/audit-event.v1.schema.json (jsonschema, draft 2020-12) and is already in RFC 8785
canonical form (rfc8785 writes the same bytes).

usage: audit_event_check.py SCHEMA.json EVENTS.txt   (one event per line: base64 of its bytes)
Prints one line per problem and a summary; exits 1 on any problem.
"""
import base64
import json
import sys

import jsonschema
import rfc8785


def main():
    schema = json.load(open(sys.argv[1]))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    problems, count = [], 0
    for line in open(sys.argv[2]):
        raw = base64.b64decode(line.strip())
        event = json.loads(raw)
        count += 1
        for error in validator.iter_errors(event):
            problems.append("event %d: %s at %s" % (count, error.message, list(error.absolute_path)))
        if rfc8785.dumps(event) != raw:
            problems.append("event %d is not canonical: %r" % (count, raw))
    for problem in problems:
        print(problem)
    print(json.dumps({"events": count, "problems": len(problems)}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
