"""Length statistics: whitespace-separated words and characters of predictions vs. references."""

from collections.abc import Sequence
from statistics import fmean

from dialoghub.metrics.inputs import check_predictions_and_references


def word_counts(texts: Sequence[str]) -> list[int]:
    """Whitespace-separated words of each text: the length every statistic here, and the cards, mean."""
    return [len(text.split()) for text in texts]


def length_statistics(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Means over samples; a sample's reference length is the mean over its references, so every sample weighs the
    same on both sides. `words_ratio` is mean prediction words / mean reference words."""
    check_predictions_and_references(predictions, references)
    prediction_words = fmean(word_counts(predictions))
    reference_words = fmean(fmean(word_counts(sample)) for sample in references)
    return {
        "prediction_words": prediction_words,
        "prediction_chars": fmean(len(prediction) for prediction in predictions),
        "reference_words": reference_words,
        "reference_chars": fmean(fmean(len(reference) for reference in sample) for sample in references),
        "words_ratio": prediction_words / reference_words if reference_words else float("nan"),
    }
