"""`python -m fake_openai`: the same as the `fake-openai` command."""

from fake_openai.cli import main

main()
