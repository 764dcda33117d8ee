"""Integration tests for the local Stripe emulator (devstack/stripe_emulator/), driven through the official SDK."""
