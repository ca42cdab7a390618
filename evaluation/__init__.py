"""The evaluation folder of the repository: the leaderboard's command line (`python -m evaluation.leaderboard`), its
recipes, and the metrics as local `evaluate` modules. It is not installed; the library is `dialoghub.evaluation` and
the metrics are `dialoghub.metrics`."""
