"""Stand up Databricks on AWS behind a hub-and-spoke data-exfiltration firewall."""

__version__ = "0.1.0"
