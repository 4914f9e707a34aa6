"""`kharness kcidb RUN -o FILE --origin NAME`: a result directory as KCIDB JSON.

Submit it with KernelCI's tools: `kcidb-validate < FILE` and
`kcidb-submit -p PROJECT -t TOPIC < FILE` (README "KernelCI (KCIDB)").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import atomic, results
from harness.errors import EXIT_OK
from harness.kcidb import export


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN", help="a result directory (kharness run, merge or lava ingest)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the JSON here (default: stdout)")
    p.add_argument("--origin", default="kharness", metavar="NAME",
                   help="the CI system's KCIDB origin, [a-z0-9_]+ (default kharness)")


def main(args: argparse.Namespace) -> int:
    origin = export.check_origin(args.origin)  # before reading anything
    doc = export.document(results.load_run(args.run), origin)
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        atomic.write_text(args.output, text)
        print(f"{results.shown(args.output)}: {len(doc['checkouts'])} checkout(s), {len(doc['builds'])} build(s), "
              f"{len(doc['tests'])} test(s)", file=sys.stderr)
    return EXIT_OK
