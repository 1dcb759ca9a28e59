"""`python -m netscope`."""

from netscope.app.cli import main

raise SystemExit(main())
