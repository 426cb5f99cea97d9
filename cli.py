#!/usr/bin/env python3
"""Run gradviz's command-line interface from a checkout: ``python cli.py render ...``."""

from gradviz.cli import main

if __name__ == "__main__":
    main()
