"""Toxicity of texts through a pluggable scorer: alt-profanity-check offline (default), or a Hugging Face
text-classification model id. A thin `evaluate` wrapper of `dialoghub.metrics.toxicity`."""

import datasets
import evaluate

from dialoghub.metrics import toxicity  # From: dialoghub

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = f"""
Args:
    predictions: list of str.
    scorer: {toxicity.PROFANITY_CHECK!r} (default) or a text-classification model id / local folder with a "toxic"
        label.
    revision: the classifier's revision (default: main).
    use_aggregator: if True (default) the mean probability and the fraction of texts at or above 0.5, else one
        probability per text.
Returns:
    toxicity_mean and toxic_fraction, or toxicity (list of probabilities in [0, 1]).
"""

_CITATION = """
@software{alt_profanity_check,
    title = "alt-profanity-check",
    author = "Dimitrios Mistriotis",
    url = "https://github.com/dimitrismistriotis/alt-profanity-check",
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DialoghubToxicity(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
            codebase_urls=["https://github.com/dimitrismistriotis/alt-profanity-check"],
        )

    def _compute(self, predictions, scorer=toxicity.PROFANITY_CHECK, revision=None, use_aggregator=True):
        # Keep the loaded classifier between compute() calls with the same scorer.
        loaded = getattr(self, "_scorer", None)
        if loaded is None or getattr(self, "_scorer_key", None) != (scorer, revision):
            self._scorer = toxicity.load_toxicity_scorer(scorer, revision=revision)
            self._scorer_key = (scorer, revision)
        scores = self._scorer(predictions)
        return toxicity.summarize_toxicity(scores) if use_aggregator else {"toxicity": scores}
