"""Stage: tasks, evaluation runs, results records and the leaderboard."""
