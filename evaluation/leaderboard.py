"""`python -m evaluation.leaderboard {eval,show,benchmark,verify}`: the leaderboard's command line, run from the
repository root. The library behind it is `dialoghub.evaluation`; `--help` on each command lists its flags."""

import dialoghub.core.hubenv  # noqa: F401

import sys

from dialoghub.evaluation.leaderboard import main

if __name__ == "__main__":
    sys.exit(main())
