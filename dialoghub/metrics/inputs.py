"""Checks shared by every reference-based metric, so bad input fails with the offending sample's index."""

from collections.abc import Sequence


def check_predictions_and_references(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    """Predictions are strings; each sample has a non-empty list of reference strings (their number may vary)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if not predictions:
        raise ValueError("no predictions to score")
    for index, (prediction, sample_references) in enumerate(zip(predictions, references, strict=True)):
        if not isinstance(prediction, str):
            raise TypeError(f"sample {index}: prediction is {type(prediction).__name__}, not str")
        if isinstance(sample_references, str) or not sample_references:
            raise ValueError(
                f"sample {index}: references must be a non-empty list of strings, got {sample_references!r}"
            )
        if not all(isinstance(reference, str) for reference in sample_references):
            raise TypeError(f"sample {index}: every reference must be a str, got {sample_references!r}")
