"""The `txguard` command line: `main` builds the parser from `commands/*.py`, each a thin command
over the tooling and runtime packages."""
