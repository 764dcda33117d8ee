"""``python -m devstack.stripe_emulator``: run the emulator in the foreground."""

from devstack.stripe_emulator.cli import main

if __name__ == "__main__":
    main()
