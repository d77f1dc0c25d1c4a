"""Evaluation on independent data: the Fraud Detection Handbook's simulated dataset, its baseline
recipe, and the comparison with txguard on one time split (`txguard evaluate handbook`).

txguard's own simulator grades txguard on fraud it was designed around; this package builds a
dataset from another published design (customers paying terminals, compromised terminals, a
7-day label delay) and the recipe a newcomer would try first, so a gap shows up as a number.
"""

# The recipe's classifiers (txguard.evaluation.recipe), here so `txguard evaluate --help` imports nothing heavy.
CLASSIFIERS: tuple[str, ...] = (
    "logistic_regression", "decision_tree_depth_2", "decision_tree", "random_forest", "gradient_boosting"
)
