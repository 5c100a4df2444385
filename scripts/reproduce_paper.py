#!/usr/bin/env python3
"""Rerun the studies' figures and tables (see aimcbench/studies/reproduce.py; `make reproduce-paper-figures`)."""
import sys

from aimcbench.studies.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
