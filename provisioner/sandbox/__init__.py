"""The local emulator: moto plus what moto lacks, and an emulated Databricks Account API."""

from __future__ import annotations


def install_patches() -> None:
    """Teach moto what our calls need and moto 5.2.5 lacks (idempotent)."""
    from provisioner.sandbox import dns_firewall, ec2_patches, ec2_routes, network_firewall, quotas, tagging

    ec2_patches.install()
    ec2_routes.install()
    network_firewall.install()
    dns_firewall.install()
    quotas.install()
    tagging.install()
