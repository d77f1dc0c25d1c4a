"""Rules beside the model: a safe, fast rule language, rule sets and their evaluation (docs/rules.md).

`language` parses a rule's condition (a subset of the Common Expression Language) into a tree
with positions, `check` refuses what cannot run or can never fire, `compiler` turns a checked set
into one Python function, `engine` applies it after the model. Imported by the scoring function
(its archive ships it) and the console (check on save); it imports `contract` and `features` only.
"""
