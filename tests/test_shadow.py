"""fraud.shadow's figures, by hand: what both models did on the same rows (no stack)."""

import pyarrow as pa

from fraud.shadow import ShadowBatch, scores


def gold(version: str, predicted: list[str], alerts: list[bool]) -> pa.Table:
    n = len(predicted)
    return pa.table({"transaction_id": [f"t{i}" for i in range(n)], "model_version": [version] * n,
                     "pattern": ["fraud_card_testing", "regular_browse", None, "fraud_structuring"][:n],
                     "predicted_class": predicted, "fraud_score": [0.9 if a else 0.1 for a in alerts],
                     "is_alert": alerts})


def test_a_batch_is_counted_by_what_each_model_did_and_the_truth():
    batch = ShadowBatch(
        gold("v1", ["fraud_card_testing", "regular", "regular", "regular"], [True, False, False, False]),
        gold("v2", ["fraud_card_testing", "fraud_promo_abuse", "regular", "fraud_structuring"],
             [True, True, False, True]))
    assert batch.outcomes() == {
        ("fraud_card_testing", "fraud_card_testing", True, "fraud_card_testing", True): 1,
        ("regular", "regular", False, "fraud_promo_abuse", True): 1,
        ("unknown", "regular", False, "regular", False): 1,  # no pattern recorded: no ground truth
        ("fraud_structuring", "regular", False, "fraud_structuring", True): 1,
    }
    # Rows either model alerts on, with both predictions: (class, score, alert) x 2, transaction id.
    assert [r[-1] for r in batch.alert_rows()] == ["t0", "t1", "t3"]
    assert batch.alert_rows()[1] == ("regular", 0.1, False, "fraud_promo_abuse", 0.9, True, "t1")


def test_scores_of_one_model():
    # (true class, predicted, alerted, rows): 8 regular rows right, 1 alerted by mistake; 2 fraud
    # rows of one class caught, 1 missed.
    card = "fraud_card_testing"
    figures = scores([("regular", "regular", False, 8), ("regular", card, True, 1), (card, card, True, 2),
                      (card, "regular", False, 1)])
    assert figures == {"rows": 12, "accuracy": round(10 / 12, 4),
                       "macro_f1": round((2 * 8 / (9 + 9) + 2 * 2 / (3 + 3)) / 2, 4),
                       "alerts": 3, "fraud_rows_alerted": round(2 / 3, 4), "alerts_on_fraud": round(2 / 3, 4)}
    assert scores([]) == {"rows": 0}
