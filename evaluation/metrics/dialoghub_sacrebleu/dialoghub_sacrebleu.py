"""Corpus BLEU and chrF (sacrebleu, default settings) with a variable number of references per prediction.
A thin `evaluate` wrapper of `dialoghub.metrics.bleu_chrf`."""

import datasets
import evaluate

from dialoghub.metrics import bleu_chrf  # From: dialoghub

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of str.
    references: list of lists of str; the number of references may differ between predictions (missing ones are
        passed to sacrebleu as None, which it ignores).
Returns:
    bleu, chrf: corpus scores (0-100); bleu_signature, chrf_signature: sacrebleu's signatures.
Examples:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(predictions=["hello there world"], references=[["hello there world", "hi"]])["chrf"]
    100.0
"""

_CITATION = """
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    url = "https://www.aclweb.org/anthology/W18-6319",
}
@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\'c}, Maja",
    booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
    year = "2015",
    url = "https://aclanthology.org/W15-3049",
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DialoghubSacrebleu(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions, references):
        results = {}
        for name in bleu_chrf.CORPUS_METRICS:
            corpus = bleu_chrf.CorpusStatistics(name, predictions, references)
            results[name] = corpus.score()
            results[f"{name}_signature"] = corpus.signature
        return results
