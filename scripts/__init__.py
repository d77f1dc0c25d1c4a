"""The `txguard` CLI and local tooling: thin commands over the core in shared/."""
