"""`python -m harness` is the `kharness` command."""

from harness.cli import main

raise SystemExit(main())
