"""The lip-sync discriminator (SyncNet-style), its losses, and the AV offset / LSE-D / LSE-C meters."""
