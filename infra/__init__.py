"""The txguard Pulumi program: `__main__.py` wires the components declared in this package."""
