"""ROUGE-1/2/L/Lsum (google's rouge_score, Porter stemming) with several references per prediction, under the max or
the jackknife protocol. A thin `evaluate` wrapper of `dialoghub.metrics.rouge`, which documents both protocols and the
sentence splitting used for ROUGE-Lsum."""

from statistics import fmean

import datasets
import evaluate

from dialoghub.metrics import rouge  # From: dialoghub

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of str.
    references: list of lists of str; the number of references may differ between predictions.
    protocol: "jackknife" (default) or "max".
    use_aggregator: if True (default) the mean over predictions, else one score per prediction.
Returns:
    rouge1, rouge2, rougeL, rougeLsum: F-measures in percent (0-100).
Examples:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(predictions=["the cat sat"], references=[["the cat sat", "a dog ran"]], protocol="max")
    {'rouge1': 100.0, 'rouge2': 100.0, 'rougeL': 100.0, 'rougeLsum': 100.0}
"""

_CITATION = """
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    year = "2004",
    url = "https://aclanthology.org/W04-1013",
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DialoghubRouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions, references, protocol="jackknife", use_aggregator=True):
        per_sample = rouge.rouge_per_sample(predictions, references, protocol)
        if use_aggregator:
            return {name: 100 * fmean(scores) for name, scores in per_sample.items()}
        return {name: [100 * score for score in scores] for name, scores in per_sample.items()}
