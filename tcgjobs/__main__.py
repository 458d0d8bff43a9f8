"""``python -m tcgjobs`` runs the CLI."""

from tcgjobs.cli import main

if __name__ == "__main__":
    main()
