"""Evaluation: summary metrics (`evaluation.metrics`), non-model baselines (`evaluation.baselines`) and the
leaderboard."""
