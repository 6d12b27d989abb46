"""Final classification results: accuracy, top-5, per-class precision/recall/F1, confusion."""
from typing import Sequence

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  """counts[true, predicted]."""
  counts = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(counts, (labels, predictions), 1)
  return counts


def per_class(confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, float]]:
  """Precision, recall, F1 and support per class (0 where undefined, as sklearn's zero_division=0)."""
  true_positive = np.diag(confusion).astype(np.float64)
  predicted = confusion.sum(0)
  actual = confusion.sum(1)
  precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
  recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
  denominator = precision + recall
  f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(true_positive),
                 where=denominator > 0)
  return {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
          for name, p, r, f, s in zip(class_names, precision, recall, f1, actual)}


def split_results(labels: np.ndarray, logits: np.ndarray, class_names: Sequence[str]) -> dict:
  """Everything results.json holds for one split."""
  predictions = logits.argmax(-1)
  confusion = confusion_matrix(labels, predictions, len(class_names))
  out = {"accuracy": float(np.mean(predictions == labels)) if len(labels) else float("nan"),
         "num_examples": int(len(labels)),
         "per_class": per_class(confusion, class_names),
         "confusion_matrix": confusion.tolist()}
  if len(class_names) > 5:
    top5 = np.argsort(-logits, axis=-1)[:, :5]
    out["top5_accuracy"] = float(np.mean(np.any(top5 == labels[:, None], axis=-1)))
  return out
