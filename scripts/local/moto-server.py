"""
The AWS emulator as the tests, the demo and the benchmarks start it (scripts/local/moto.ts):
`python -m moto.server` with its arguments, and three caches moto lacks. Each holds what moto
computes afresh for every request or event from things that do not change while it runs; what moto
answers is unchanged.

- moto hands every event a rule matches to the rule's targets through an input template, reading
  eight JSONPath expressions from the event; jsonpath_ng builds its parser (a yacc table) afresh for
  each, some 150 ms of CPU per PutEvents. The expressions are the same every time.
- To find the service a request is for, moto lists its own package folder (a stat of each of some
  200 entries), twice per request: a fifth of its CPU in a run of many cases.
- To find the handler of an action, moto lists the methods of the service's response class.
"""

import functools
import sys

try:
    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)
except ImportError:
    pass

import moto.backends
import moto.core.responses

_moto_modules = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _moto_modules
moto.core.responses.method_names_from_class = functools.lru_cache(maxsize=None)(
    moto.core.responses.method_names_from_class
)

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
