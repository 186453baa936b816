"""``python -m supernet.train`` — same as ``supernet-train``."""

from supernet.cli.train import main

if __name__ == "__main__":
    main()
