"""`python -m costplane` is the `costplane` command."""

from costplane.cli.main import main

main()
