"""
The AWS emulator as the tests, the demo and the benchmarks start it (scripts/local/moto.ts):
`python -m moto.server` with its arguments, and one cache moto lacks.

moto hands every event a rule matches to the rule's targets through an input template, reading
eight JSONPath expressions from the event; jsonpath_ng builds its parser (a yacc table) afresh for
each, some 150 ms of CPU per PutEvents. The expressions are the same every time: parsed once here,
the event is read exactly as before.
"""

import functools
import sys

try:
    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)
except ImportError:
    pass

from moto.server import main

if __name__ == "__main__":
    main(sys.argv[1:])
