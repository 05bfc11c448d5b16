"""The child process of `runner.run_case`: `python -m keras_lambda.bench CASE_JSON`
measures one case (or runs one race) and prints its result as JSON."""

import json
import sys

from keras_lambda.bench.measure import measure, race
from keras_lambda.bench.methods import Case, Race

fields = json.loads(sys.argv[1])
try:
    if "methods" in fields:
        print(json.dumps(race(Race(**fields))))
    else:
        print(json.dumps(measure(Case(**fields))))
except MemoryError:
    print("MemoryError", file=sys.stderr)
    sys.exit(3)
