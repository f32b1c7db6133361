"""The ground truth's classes, part of the contract (docs/design.md §4): the simulator draws exactly
``FRAUD_CLASSES`` (it checks so at import) and the model predicts ``MODEL_CLASSES``. Plain
Python, no Spark: the simulator and the Dash app import it.
"""

# Ground truth: the fraud values of ``pattern`` (each regular pattern is named ``regular_*``).
# The order is the model's label order: scoring reads a registered model's probabilities by it,
# so changing it means retraining.
FRAUD_CLASSES = (
    "fraud_account_takeover", "fraud_gold_farming", "fraud_chargeback_fraud",
    "fraud_card_testing", "fraud_friendly_fraud", "fraud_promo_abuse",
    "fraud_structuring", "fraud_money_laundering", "fraud_synthetic_identity",
)
# The model's 10 classes: every fraud pattern, and all regular patterns folded into one, first
# (fraud_score is 1 - P(regular)).
MODEL_CLASSES = ("regular", *FRAUD_CLASSES)
