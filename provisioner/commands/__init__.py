"""Command groups beyond the core lifecycle (`provision egress ...`, `provision sandbox traffic`), each registered
in `provisioner.cli`."""
