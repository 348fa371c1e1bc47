"""RFC 8785 canonical JSON by the `rfc8785` package, for comparing with Writ's.

usage: jcs_check.py DOCS.jsonl
Each input line is one JSON document; each output line is the base64 of its canonical bytes, or
"error <exception name>" when the package refuses it (a number outside the exact range).
"""
import base64
import json
import sys

import rfc8785


def main():
    for line in open(sys.argv[1], encoding="utf-8"):
        document = json.loads(line)
        try:
            print(base64.b64encode(rfc8785.dumps(document)).decode())
        except Exception as error:
            print("error %s" % type(error).__name__)


if __name__ == "__main__":
    main()
