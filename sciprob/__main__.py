"""``python -m sciprob`` runs the command line."""

from sciprob.cli import main

main()
