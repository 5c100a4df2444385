#!/usr/bin/env python3
"""Study 003's closed-form error model against the Monte Carlo simulator (see aimcbench/studies/s003/errormodel.py)."""
import sys

from aimcbench.studies.s003.errormodel import main

if __name__ == "__main__":
    sys.exit(main())
